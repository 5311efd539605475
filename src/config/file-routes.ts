// The `routes:` section of the config file, read into RouteSpecs (src/model/route.ts). This file
// checks the shape (keys, types, one action per route); what a value means (a bad regex, a header
// value with a CR) is checked by the model's own routeProblems, and pool names against `pools`.
// Every message starts with the route: routes[3] (name "shop"): ...

import { findShadowed } from '../model/shadow.js';
import type {
  HeaderMatch,
  HeaderOpsSpec,
  PathRewriteSpec,
  QueryMatch,
  RedirectSpec,
  RespondSpec,
  RouteAction,
  RouteMatch,
  RouteOverrides,
  RouteSpec,
  SplitKey,
  SplitTarget,
} from '../model/route.js';
import { routeProblems } from '../model/validate.js';
import {
  at,
  checkKeys,
  defined,
  describe,
  isMap,
  readBoolean,
  readList,
  readMap,
  readNumber,
  readString,
  readStringMap,
  readStrings,
  type FileMap,
  type Problems,
} from './file-values.js';
import { didYouMean } from './suggest.js';
import { EDGE_KEYS, readEdge } from './file-edge.js';
import { variableFor } from './variables.js';

const ACTIONS = ['pool', 'split', 'redirect', 'respond'] as const;
const REWRITES = ['strip_prefix', 'prefix_rewrite', 'regex_rewrite'] as const;
const ROUTE_KEYS = [
  'name',
  'match',
  ...ACTIONS,
  'split_key',
  ...REWRITES,
  'host_rewrite',
  'request_headers',
  'response_headers',
  'timeout_ms',
  'retries',
  'max_body_bytes',
  'websocket',
  ...EDGE_KEYS,
];
const MATCH_KEYS = ['host', 'path', 'path_prefix', 'path_regex', 'methods', 'headers', 'query'];
const HEADER_MATCH_KINDS = ['exact', 'prefix', 'regex', 'present'] as const;
const ROUTE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Routes in file order; problems (including unknown pools, duplicate names, shadowing) recorded. */
/**
 * `baseDir` anchors relative file paths (jwks_file, htpasswd); `defaults` is the top-level
 * defaults: block (edge keys every pool or split route gets unless it sets its own).
 */
export function readRoutes(node: unknown, problems: Problems, pools: ReadonlySet<string>, baseDir = process.cwd(), defaults?: FileMap): RouteSpec[] {
  const list = readList(node, 'routes', problems);
  if (list === undefined) return [];
  if (list.length === 0) problems.add('routes', 'an empty list routes nothing: every request would get 404');
  const routes: RouteSpec[] = [];
  const valid: boolean[] = [];
  const labels: string[] = [];
  const names = new Map<string, number>();
  list.forEach((item, index) => {
    const before = problems.count;
    const name = isMap(item) && typeof item.name === 'string' ? item.name : undefined;
    const label = name === undefined ? `routes[${index}]` : `routes[${index}] (name ${JSON.stringify(name)})`;
    labels.push(label);
    const effective = name ?? `route-${index}`;
    const first = names.get(effective);
    if (first !== undefined) problems.add(label, `name ${JSON.stringify(effective)} is already used by routes[${first}]`);
    else names.set(effective, index);
    const map = readMap(item, label, problems);
    const spec = map === undefined ? undefined : readRoute(map, index, label, problems, pools, baseDir, defaults);
    if (spec !== undefined) for (const p of routeProblems(spec)) problems.add(label, p);
    routes.push(spec ?? { name: `route-${index}`, match: {}, action: { kind: 'pool', pool: '' } });
    valid.push(spec !== undefined && problems.count === before);
  });
  for (const { index, by } of findShadowed(routes.map((r, i) => (valid[i] ? r.match : null)))) {
    problems.add(labels[index], `unreachable: ${labels[by]} already matches every request this route matches`);
  }
  return routes;
}

function checkPool(name: string, pools: ReadonlySet<string>, where: string, problems: Problems): void {
  if (!pools.has(name)) problems.add(where, `unknown pool ${JSON.stringify(name)}${didYouMean(name, pools)}`);
}

/** A RouteSpec, or undefined when the shape is wrong (problems recorded). */
function readRoute(map: FileMap, index: number, label: string, problems: Problems, pools: ReadonlySet<string>, baseDir: string, defaults: FileMap | undefined): RouteSpec | undefined {
  const before = problems.count;
  const key = (k: string) => `${label}: ${k}`;
  checkKeys(map, ROUTE_KEYS, label, problems);
  let name = `route-${index}`;
  if (map.name !== undefined) {
    const given = readString(map.name, key('name'), problems);
    if (given !== undefined && !ROUTE_NAME.test(given)) problems.add(key('name'), 'a route name is letters, digits, ".", "_" and "-", at most 64 characters');
    name = given ?? name;
  }
  let match: RouteMatch | undefined;
  if (map.match === undefined) problems.add(label, 'missing key "match" (use match: {} to match every request)');
  else match = readMatch(map.match, key('match'), problems);
  const action = readAction(map, label, problems, pools);
  const rewrite = readRewrite(map, label, problems);
  const hostRewrite = map.host_rewrite === undefined ? undefined : readString(map.host_rewrite, key('host_rewrite'), problems);
  let requestHeaders = map.request_headers === undefined ? undefined : readHeaderOps(map.request_headers, key('request_headers'), problems);
  const responseHeaders = map.response_headers === undefined ? undefined : readHeaderOps(map.response_headers, key('response_headers'), problems);
  const overrides = readOverrides(map, label, problems);
  const { edge, removes } = readEdge(map, defaults, label, problems, baseDir, ACTIONS.find((a) => map[a] !== undefined));
  // Headers the policy sets upstream (claims, copied auth headers) never come from the client.
  if (removes.length > 0) requestHeaders = { ...requestHeaders, remove: [...(requestHeaders?.remove ?? []), ...removes] };
  const websocket = map.websocket === undefined ? undefined : readBoolean(map.websocket, key('websocket'), problems);
  if (problems.count > before || match === undefined || action === undefined) return undefined;
  return defined({ name, match, action, rewrite, hostRewrite, requestHeaders, responseHeaders, overrides, websocket, edge });
}

function readMatch(node: unknown, where: string, problems: Problems): RouteMatch | undefined {
  const map = readMap(node, where, problems);
  if (map === undefined) return undefined;
  checkKeys(map, MATCH_KEYS, where, problems);
  const str = (k: string) => (map[k] === undefined ? undefined : readString(map[k], at(where, k), problems));
  const methods = map.methods === undefined ? undefined : readStrings(map.methods, at(where, 'methods'), problems)?.map((m) => m.toUpperCase());
  let headers: HeaderMatch[] | undefined;
  if (map.headers !== undefined) {
    const h = readMap(map.headers, at(where, 'headers'), problems);
    headers = h === undefined ? undefined : Object.entries(h).flatMap(([name, v]) => readHeaderMatch(name.toLowerCase(), v, at(at(where, 'headers'), name), problems));
  }
  let query: QueryMatch[] | undefined;
  if (map.query !== undefined) query = readStringMap(map.query, at(where, 'query'), problems);
  const host = str('host')?.toLowerCase();
  return defined({ host, path: str('path'), pathPrefix: str('path_prefix'), pathRegex: str('path_regex'), methods, headers, query });
}

/** "value" (exact), or a map with exactly one of exact, prefix, regex, present. */
function readHeaderMatch(name: string, node: unknown, where: string, problems: Problems): HeaderMatch[] {
  if (typeof node === 'string') return [{ name, match: { kind: 'exact', value: node } }];
  if (!isMap(node)) {
    const hint = typeof node === 'number' || typeof node === 'boolean' ? ` (quote it: "${String(node)}")` : '';
    problems.add(where, `expected a string or one of { exact | prefix | regex | present }, got ${describe(node)}${hint}`);
    return [];
  }
  checkKeys(node, HEADER_MATCH_KINDS, where, problems);
  const kinds = HEADER_MATCH_KINDS.filter((k) => node[k] !== undefined);
  if (kinds.length !== 1) {
    problems.add(where, `give exactly one of ${HEADER_MATCH_KINDS.join(', ')}`);
    return [];
  }
  const kind = kinds[0];
  if (kind === 'present') {
    if (typeof node.present !== 'boolean') {
      problems.add(at(where, 'present'), `expected true or false, got ${describe(node.present)}`);
      return [];
    }
    return [{ name, match: { kind, present: node.present } }];
  }
  const value = readString(node[kind], at(where, kind), problems);
  if (value === undefined) return [];
  return [{ name, match: kind === 'regex' ? { kind, pattern: value } : { kind, value } }];
}

function readAction(map: FileMap, label: string, problems: Problems, pools: ReadonlySet<string>): RouteAction | undefined {
  const given = ACTIONS.filter((a) => map[a] !== undefined);
  if (given.length === 0) {
    problems.add(label, `needs an action: one of ${ACTIONS.join(', ')}`);
    return undefined;
  }
  if (given.length > 1) {
    problems.add(label, `give one action, not ${given.join(' and ')}`);
    return undefined;
  }
  if (map.split_key !== undefined && given[0] !== 'split') problems.add(`${label}: split_key`, 'only means something with split');
  const where = `${label}: ${given[0]}`;
  switch (given[0]) {
    case 'pool': {
      const pool = readString(map.pool, where, problems);
      if (pool !== undefined) checkPool(pool, pools, label, problems);
      return pool === undefined ? undefined : { kind: 'pool', pool };
    }
    case 'split': {
      const targets = readSplit(map.split, where, problems, pools);
      const key = map.split_key === undefined ? null : readSplitKey(map.split_key, `${label}: split_key`, problems);
      return targets === undefined || key === undefined ? undefined : { kind: 'split', targets, key };
    }
    case 'redirect': {
      const redirect = readRedirect(map.redirect, where, problems);
      return redirect === undefined ? undefined : { kind: 'redirect', redirect };
    }
    case 'respond': {
      const respond = readRespond(map.respond, where, problems);
      return respond === undefined ? undefined : { kind: 'respond', respond };
    }
  }
}

function readSplit(node: unknown, where: string, problems: Problems, pools: ReadonlySet<string>): SplitTarget[] | undefined {
  const list = readList(node, where, problems);
  if (list === undefined) return undefined;
  const targets: SplitTarget[] = [];
  list.forEach((item, i) => {
    const map = readMap(item, at(where, i), problems);
    if (map === undefined) return;
    checkKeys(map, ['pool', 'weight'], at(where, i), problems);
    const pool = readString(map.pool, at(at(where, i), 'pool'), problems);
    if (pool !== undefined) checkPool(pool, pools, at(where, i), problems);
    const weight = readNumber(map.weight, at(at(where, i), 'weight'), problems);
    if (pool !== undefined && weight !== undefined) targets.push({ pool, weight });
  });
  return targets.length === list.length ? targets : undefined;
}

/** "header:<name>" or "cookie:<name>". */
function readSplitKey(node: unknown, where: string, problems: Problems): SplitKey | null | undefined {
  const text = readString(node, where, problems);
  if (text === undefined) return undefined;
  const m = /^(header|cookie):(.+)$/i.exec(text.trim());
  if (m === null) {
    problems.add(where, `got ${JSON.stringify(text)}, expected "header:<name>" or "cookie:<name>"`);
    return undefined;
  }
  const kind = m[1].toLowerCase() as 'header' | 'cookie';
  return { kind, name: kind === 'header' ? m[2].trim().toLowerCase() : m[2].trim() };
}

function readRedirect(node: unknown, where: string, problems: Problems): RedirectSpec | undefined {
  const map = readMap(node, where, problems);
  if (map === undefined) return undefined;
  checkKeys(map, ['status', 'location', 'scheme', 'host', 'port', 'path', 'prefix_rewrite', 'query'], where, problems);
  const str = (k: string) => (map[k] === undefined ? undefined : readString(map[k], at(where, k), problems));
  const num = (k: string) => (map[k] === undefined ? undefined : readNumber(map[k], at(where, k), problems));
  const scheme = str('scheme')?.toLowerCase() as RedirectSpec['scheme'];
  // 301 as Envoy's default; status is best written out.
  const status = (num('status') ?? 301) as RedirectSpec['status'];
  const parts = { location: str('location'), scheme, host: str('host')?.toLowerCase(), port: num('port'), path: str('path'), prefixRewrite: str('prefix_rewrite'), query: str('query') };
  return defined({ status, ...parts });
}

function readRespond(node: unknown, where: string, problems: Problems): RespondSpec | undefined {
  const map = readMap(node, where, problems);
  if (map === undefined) return undefined;
  checkKeys(map, ['status', 'headers', 'body'], where, problems);
  const status = map.status === undefined ? 200 : readNumber(map.status, at(where, 'status'), problems);
  const headers = map.headers === undefined ? [] : readStringMap(map.headers, at(where, 'headers'), problems);
  const body = map.body === undefined ? '' : readString(map.body, at(where, 'body'), problems);
  return status === undefined || headers === undefined || body === undefined ? undefined : { status, headers, body };
}

function readRewrite(map: FileMap, label: string, problems: Problems): PathRewriteSpec | undefined {
  const given = REWRITES.filter((r) => map[r] !== undefined);
  if (given.length > 1) {
    problems.add(label, `give at most one path rewrite, not ${given.join(' and ')}`);
    return undefined;
  }
  const where = `${label}: ${given[0]}`;
  switch (given[0]) {
    case undefined:
      return undefined;
    case 'strip_prefix': {
      const prefix = readString(map.strip_prefix, where, problems);
      return prefix === undefined ? undefined : { kind: 'strip-prefix', prefix };
    }
    case 'prefix_rewrite': {
      const replacement = readString(map.prefix_rewrite, where, problems);
      return replacement === undefined ? undefined : { kind: 'prefix', replacement };
    }
    case 'regex_rewrite': {
      const m = readMap(map.regex_rewrite, where, problems);
      if (m === undefined) return undefined;
      checkKeys(m, ['pattern', 'substitution'], where, problems);
      const pattern = readString(m.pattern, at(where, 'pattern'), problems);
      const substitution = readString(m.substitution, at(where, 'substitution'), problems);
      return pattern === undefined || substitution === undefined ? undefined : { kind: 'regex', pattern, substitution };
    }
  }
}

function readHeaderOps(node: unknown, where: string, problems: Problems): HeaderOpsSpec | undefined {
  const map = readMap(node, where, problems);
  if (map === undefined) return undefined;
  checkKeys(map, ['set', 'add', 'remove'], where, problems);
  const set = map.set === undefined ? undefined : readStringMap(map.set, at(where, 'set'), problems);
  const add = map.add === undefined ? undefined : readStringMap(map.add, at(where, 'add'), problems);
  const remove = map.remove === undefined ? undefined : readStrings(map.remove, at(where, 'remove'), problems);
  return defined({ set, add, remove });
}

/** timeout_ms, retries, max_body_bytes: checked by the parsers of the variables they override. */
function readOverrides(map: FileMap, label: string, problems: Problems): RouteOverrides | undefined {
  const read = (key: string, field: 'requestTimeoutMs' | 'retries' | 'maxBodyBytes'): number | undefined => {
    if (map[key] === undefined) return undefined;
    const n = readNumber(map[key], `${label}: ${key}`, problems);
    if (n === undefined) return undefined;
    const parsed = variableFor(field).parse(String(n));
    if (parsed.ok) return parsed.value;
    for (const issue of parsed.issues) problems.add(`${label}: ${key}`, `got ${issue.value}, expected ${issue.expected}`);
    return undefined;
  };
  const overrides = { requestTimeoutMs: read('timeout_ms', 'requestTimeoutMs'), retries: read('retries', 'retries'), maxBodyBytes: read('max_body_bytes', 'maxBodyBytes') };
  return Object.values(overrides).every((v) => v === undefined) ? undefined : defined(overrides);
}
