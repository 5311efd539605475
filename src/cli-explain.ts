// `sluice --explain METHOD URL [-H 'name: value']...`: which route a request matches and what it
// becomes (path, host, headers) and where it goes, from the configuration in the environment,
// without starting anything. For reviewing route tables by hand and asserting on them in CI.

import { describeEdge } from './edge/describe.js';
import type { ResolvedConfig } from './config/types.js';
import { applyHeaderOps, type HeaderPair } from './model/index.js';
import type { CompiledRoute } from './model/compiled-route.js';
import { plainRequest, type RequestView } from './model/request-view.js';
import { compileRoutes } from './model/route-table.js';

export interface ExplainRequest {
  readonly method: string;
  readonly scheme: 'http' | 'https';
  /** As the client would send it in Host (port included). */
  readonly host: string;
  /** Raw path and query, exactly as given. */
  readonly target: string;
  /** In order, names as given (Host excluded: it is `host`). */
  readonly headers: readonly HeaderPair[];
}

export class ExplainUsageError extends Error {
  override readonly name = 'ExplainUsageError';
}

export const EXPLAIN_USAGE = "sluice --explain METHOD URL [-H 'name: value']...";

const METHOD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Split by hand, not with URL: WHATWG URL resolves "/a/../b" and re-encodes, and the point of
// --explain is to show how the path *as sent* is routed.
const ABSOLUTE = /^(https?):\/\/([^/?#]*)([^#]*)(#.*)?$/i;

export function parseExplainArgs(args: readonly string[]): ExplainRequest {
  const positional: string[] = [];
  const headers: HeaderPair[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    let header: string | undefined;
    if (arg === '-H' || arg === '--header') {
      header = args[++i];
      if (header === undefined) throw new ExplainUsageError(`${arg} needs a value such as 'x-canary: 1'`);
    } else if (arg.startsWith('-H') && arg.length > 2) {
      header = arg.slice(2);
    } else if (arg.startsWith('-') && arg.length > 1) {
      throw new ExplainUsageError(`unknown option ${JSON.stringify(arg)}`);
    } else {
      positional.push(arg);
    }
    if (header !== undefined) headers.push(parseHeader(header));
  }
  if (positional.length !== 2) throw new ExplainUsageError(`expected METHOD and URL, got ${positional.length} argument${positional.length === 1 ? '' : 's'}`);
  const [method, url] = positional;
  if (!METHOD.test(method)) throw new ExplainUsageError(`${JSON.stringify(method)} is not an HTTP method`);
  const hostHeader = headers.find((h) => h.name.toLowerCase() === 'host');
  const others = headers.filter((h) => h !== hostHeader);
  const m = ABSOLUTE.exec(url);
  if (m !== null) {
    const target = m[3] === '' || m[3].startsWith('?') ? `/${m[3]}` : m[3];
    // As with curl, an explicit Host header wins over the URL's authority.
    return { method: method.toUpperCase(), scheme: m[1].toLowerCase() as 'http' | 'https', host: hostHeader?.value ?? m[2], target, headers: others };
  }
  if (url.startsWith('/')) return { method: method.toUpperCase(), scheme: 'http', host: hostHeader?.value ?? '', target: url.replace(/#.*$/, ''), headers: others };
  throw new ExplainUsageError(`${JSON.stringify(url)} is not an http(s):// URL or a path starting with /`);
}

function parseHeader(text: string): HeaderPair {
  const colon = text.indexOf(':');
  const name = colon < 0 ? '' : text.slice(0, colon).trim();
  if (!METHOD.test(name)) throw new ExplainUsageError(`-H ${JSON.stringify(text)}: expected 'name: value'`);
  return { name, value: text.slice(colon + 1).trim() };
}

export interface Explanation {
  readonly matched: boolean;
  readonly lines: string[];
}

/** What happens to `request` under `config`. Deterministic: a split without a sticky value lists every pool. */
export function explain(config: ResolvedConfig, request: ExplainRequest): Explanation {
  const table = compileRoutes(config.routes);
  const view = plainRequest(request.method, request.host, request.target, request.headers.map((h) => [h.name, h.value] as const));
  const route = table.match(view);
  if (route === null) return { matched: false, lines: ['no route (404 no-route)'] };
  const lines = [`route: ${route.name} (routes[${route.index}])`];
  const a = route.action;
  switch (a.kind) {
    case 'pool':
    case 'split':
      lines.push(...describeForward(config, route, request, view));
      break;
    case 'redirect': {
      const location = a.redirect.location({ scheme: request.scheme, host: request.host, path: view.path, query: view.query });
      lines.push(`action: redirect ${a.redirect.statusLine}`, `location: ${location}`);
      break;
    }
    case 'respond':
      lines.push(`action: respond ${a.respond.statusLine} (${Buffer.byteLength(a.respond.body)} body bytes)`);
      for (const h of a.respond.headers) lines.push(`  ${h.name}: ${h.value}`);
      break;
  }
  if (!route.responseHeaders.empty) {
    lines.push('response headers:');
    for (const name of route.responseHeaders.drops) if (!route.responseHeaders.append.some((h) => h.name === name)) lines.push(`  remove ${name}`);
    for (const h of route.responseHeaders.append) lines.push(`  ${h.name}: ${h.value}`);
  }
  return { matched: true, lines };
}

function describeForward(config: ResolvedConfig, route: CompiledRoute, request: ExplainRequest, view: RequestView): string[] {
  const lines: string[] = [];
  const a = route.action;
  let pools: string[];
  if (a.kind === 'split') {
    const total = a.split.targets.reduce((n, t) => n + t.weight, 0);
    const shares = a.split.targets.map((t) => `${t.pool} ${t.weight} (${((t.weight / total) * 100).toFixed(1)}%)`);
    lines.push(`action: split ${shares.join(', ')}`);
    const key = a.split.key;
    const sticky = a.split.stickyPoint(view) >= 0;
    if (key !== null && sticky) {
      pools = [a.split.pick(view, 0)];
      lines.push(`sticky on ${key.kind}:${key.name}: this request's value always goes to ${pools[0]}`);
    } else {
      pools = a.split.targets.filter((t) => t.weight > 0).map((t) => t.pool);
      lines.push(key === null ? 'chosen per request' : `sticky on ${key.kind}:${key.name}: not in this request, chosen per request`);
    }
  } else {
    pools = a.kind === 'pool' ? [a.pool] : [];
    lines.push(`action: pool ${pools[0]}`);
  }
  for (const name of pools) {
    const pool = config.pools.find((p) => p.name === name);
    if (pool === undefined) continue;
    // Discovered backends are only known once running: name the sources instead.
    const sources = pool.discovery === undefined ? [] : [...pool.discovery.sources.map((d) => `discovered by ${d.kind}`), ...(pool.discovery.registry ? ['registered through the API'] : [])];
    const listed = pool.upstreams.map((u) => u.url);
    const list = listed.length === 0 && sources.length === 0 ? 'the demo pool' : [...listed, ...sources].join(', ');
    lines.push(`pool ${name}: balancer ${pool.balancer}, ${list}`);
  }
  const path = route.rewritePath(view.path);
  lines.push(`upstream request: ${view.method} ${view.query === '' && !request.target.includes('?') ? path : `${path}?${view.query}`}`);
  lines.push(`host: ${route.hostRewrite ?? request.host}`);
  const headers = applyHeaderOps(route.requestHeaders, request.headers);
  lines.push(`headers:${headers.length === 0 ? ' (none)' : ''}`);
  for (const h of headers) lines.push(`  ${h.name}: ${h.value}`);
  const o = route.overrides;
  const overrides = [
    o.requestTimeoutMs === undefined ? '' : `timeout_ms ${o.requestTimeoutMs}`,
    o.retries === undefined ? '' : `retries ${o.retries}`,
    o.maxBodyBytes === undefined ? '' : `max_body_bytes ${o.maxBodyBytes}`,
  ].filter((s) => s !== '');
  if (overrides.length > 0) lines.push(`overrides: ${overrides.join(', ')}`);
  if (!route.websocket) lines.push('websocket: false (a WebSocket handshake here gets 403)');
  if (route.spec.edge !== undefined) lines.push(`edge: ${describeEdge(route.spec.edge)}`);
  return lines;
}
