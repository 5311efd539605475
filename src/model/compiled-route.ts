// One route in matching form: its actions compiled (rewriters, header edits, redirect, fixed
// response, split chooser) and the matchers the index does not answer by lookup, cheapest first.
// The host and an exact or prefix path are answered by the table's index (route-table.ts); the
// `matches` method checks everything and is the reference the index is tested against.

import type { EdgeGate } from './edge.js';
import { compileHeaderOps, type HeaderOps } from './header-ops.js';
import { normaliseHost } from './host.js';
import { headerCheck, MethodCheck, PathRegexCheck, QueryCheck, type Check } from './matchers.js';
import { prefixMatches } from './path.js';
import { compileRedirect, type CompiledRedirect } from './redirect.js';
import { compileRespond, type CompiledRespond } from './respond.js';
import { compilePathRewrite, type PathRewriter } from './rewrite.js';
import type { RouteOverrides, RouteSpec } from './route.js';
import type { RequestView } from './request-view.js';
import { SplitChooser } from './split.js';
import { routeProblems } from './validate.js';

export type CompiledAction =
  | { readonly kind: 'pool'; readonly pool: string }
  | { readonly kind: 'split'; readonly split: SplitChooser }
  | { readonly kind: 'redirect'; readonly redirect: CompiledRedirect }
  | { readonly kind: 'respond'; readonly respond: CompiledRespond };

export class RouteError extends Error {
  override readonly name = 'RouteError';
  readonly route: string;
  readonly index: number;
  readonly problems: readonly string[];
  constructor(index: number, route: string, problems: readonly string[]) {
    super(`routes[${index}] (name ${JSON.stringify(route)}): ${problems.join('; ')}`);
    this.route = route;
    this.index = index;
    this.problems = problems;
  }
}

const NO_OVERRIDES: RouteOverrides = Object.freeze({});

export class CompiledRoute {
  /** Position in the table: lower wins. */
  readonly index: number;
  readonly name: string;
  readonly spec: RouteSpec;
  /** Lower-case host pattern, or null for any host. */
  readonly host: string | null;
  readonly action: CompiledAction;
  readonly rewrite: PathRewriter | null;
  /** Host header to send upstream instead of the client's, or null. */
  readonly hostRewrite: string | null;
  readonly requestHeaders: HeaderOps;
  readonly responseHeaders: HeaderOps;
  readonly overrides: RouteOverrides;
  /** WebSocket handshakes allowed (the route's `websocket`, default true). */
  readonly websocket: boolean;
  /** The route's edge policy (src/edge), set by the worker after compiling; null = none. */
  edge: EdgeGate | null = null;
  /** Methods, query, headers, path regex: what the index leaves to check, cheapest first. */
  readonly #rest: readonly Check[];

  /** Throws RouteError with every problem routeProblems finds. */
  constructor(spec: RouteSpec, index: number) {
    const problems = routeProblems(spec);
    if (problems.length > 0) throw new RouteError(index, spec.name, problems);
    this.index = index;
    this.name = spec.name;
    this.spec = spec;
    const m = spec.match;
    this.host = m.host === undefined ? null : m.host.toLowerCase();
    this.action = compileAction(spec);
    this.rewrite = compilePathRewrite(spec.rewrite, m);
    this.hostRewrite = spec.hostRewrite ?? null;
    this.requestHeaders = compileHeaderOps(spec.requestHeaders, 'request');
    this.responseHeaders = compileHeaderOps(spec.responseHeaders, 'response');
    this.overrides = spec.overrides ?? NO_OVERRIDES;
    this.websocket = spec.websocket ?? true;
    const rest: Check[] = [];
    if (m.methods !== undefined) rest.push(new MethodCheck(m.methods));
    for (const q of m.query ?? []) rest.push(new QueryCheck(q));
    for (const h of m.headers ?? []) rest.push(headerCheck(h));
    if (m.pathRegex !== undefined) rest.push(new PathRegexCheck(m.pathRegex));
    this.#rest = rest;
  }

  /** The matchers the index did not answer hold. Allocates nothing. */
  holdsRest(view: RequestView): boolean {
    const rest = this.#rest;
    for (let i = 0; i < rest.length; i++) if (!rest[i].holds(view)) return false;
    return true;
  }

  /** Every matcher holds, index or not: the plain definition of a match. */
  matches(view: RequestView): boolean {
    const m = this.spec.match;
    if (this.host !== null && !hostMatches(normaliseHost(view.host), this.host)) return false;
    if (m.path !== undefined && view.path !== m.path) return false;
    if (m.pathPrefix !== undefined && !prefixMatches(view.path, m.pathPrefix)) return false;
    return this.holdsRest(view);
  }

  /** The path to send upstream. */
  rewritePath(path: string): string {
    return this.rewrite === null ? path : this.rewrite.rewrite(path);
  }
}

/** `host` normalised, `pattern` lower-case exact or "*.suffix". */
export function hostMatches(host: string, pattern: string): boolean {
  if (!pattern.startsWith('*.')) return host === pattern;
  return host.length > pattern.length - 1 && host.endsWith(pattern.slice(1));
}

function compileAction(spec: RouteSpec): CompiledAction {
  const a = spec.action;
  switch (a.kind) {
    case 'pool':
      return a;
    case 'split':
      return { kind: 'split', split: new SplitChooser(a.targets, a.key) };
    case 'redirect':
      return { kind: 'redirect', redirect: compileRedirect(a.redirect, spec.match) };
    case 'respond':
      return { kind: 'respond', respond: compileRespond(a.respond) };
  }
}
