// Routes as declared: matchers, one action, and optional rewrites, header edits and per-route
// overrides. Plain data (no RegExp, no functions) so it can be posted to workers and compiled
// there; compile.ts turns it into the matching form. Validation with user-facing messages lives
// beside each concern (regex.ts, header-ops.ts, rewrite.ts, ...) and in src/config/file-routes.ts.

import type { EdgeSpec } from './edge.js';

/** How one request header must look. A header sent with an empty value counts as absent. */
export type HeaderMatcher =
  | { readonly kind: 'exact'; readonly value: string }
  | { readonly kind: 'prefix'; readonly value: string }
  | { readonly kind: 'regex'; readonly pattern: string }
  /** present: true = sent (any value); present: false = not sent. */
  | { readonly kind: 'present'; readonly present: boolean };

export interface HeaderMatch {
  /** Lower-case. */
  readonly name: string;
  readonly match: HeaderMatcher;
}

export interface QueryMatch {
  readonly name: string;
  /** Compared with the decoded value of any occurrence of `name`. */
  readonly value: string;
}

/** Every matcher given must hold; none given matches every request. */
export interface RouteMatch {
  /** Exact ("api.example.com") or wildcard ("*.example.com"); lower-case, no port. */
  readonly host?: string;
  /** Exact path, as sent. */
  readonly path?: string;
  /** Segment-aware prefix: "/v1" matches /v1 and /v1/..., not /v10; "/v1/" matches /v1/... only. */
  readonly pathPrefix?: string;
  /** RE2-style subset (regex.ts), anchored at both ends. */
  readonly pathRegex?: string;
  /** Upper-case. */
  readonly methods?: readonly string[];
  readonly headers?: readonly HeaderMatch[];
  readonly query?: readonly QueryMatch[];
}

export interface HeaderPair {
  /** Lower-case. */
  readonly name: string;
  readonly value: string;
}

/** Applied in this order: remove, set (replaces every value), add (appends). */
export interface HeaderOpsSpec {
  readonly set?: readonly HeaderPair[];
  readonly add?: readonly HeaderPair[];
  readonly remove?: readonly string[];
}

export interface SplitTarget {
  readonly pool: string;
  /** >= 0; the weights of one split add up to more than 0. */
  readonly weight: number;
}

/** What makes a split sticky: the same value always lands in the same pool. */
export type SplitKey = { readonly kind: 'header'; readonly name: string } | { readonly kind: 'cookie'; readonly name: string };

export type PathRewriteSpec =
  /** Remove this literal prefix (at a segment boundary) when the path starts with it. */
  | { readonly kind: 'strip-prefix'; readonly prefix: string }
  /** Replace what the route's path_prefix (or path) matched. */
  | { readonly kind: 'prefix'; readonly replacement: string }
  /** Replace every match of `pattern` in the path; \1 or $1 in `substitution` name captures. */
  | { readonly kind: 'regex'; readonly pattern: string; readonly substitution: string };

export type RedirectStatus = 301 | 302 | 303 | 307 | 308;

/**
 * Either a literal `location`, or parts that replace the request's own (anything not given is kept
 * from the request; see redirect.ts for how the port follows the scheme).
 */
export interface RedirectSpec {
  readonly status: RedirectStatus;
  readonly location?: string;
  readonly scheme?: 'http' | 'https';
  readonly host?: string;
  readonly port?: number;
  readonly path?: string;
  /** Replace what the route's path_prefix (or path) matched, as the prefix_rewrite action does. */
  readonly prefixRewrite?: string;
  /** Replaces the query; '' drops it. Absent keeps the request's. */
  readonly query?: string;
}

export interface RespondSpec {
  readonly status: number;
  readonly headers?: readonly HeaderPair[];
  readonly body?: string;
}

export type RouteAction =
  | { readonly kind: 'pool'; readonly pool: string }
  | { readonly kind: 'split'; readonly targets: readonly SplitTarget[]; readonly key: SplitKey | null }
  | { readonly kind: 'redirect'; readonly redirect: RedirectSpec }
  | { readonly kind: 'respond'; readonly respond: RespondSpec };

/** Per-route values that win over the pool's. */
export interface RouteOverrides {
  readonly requestTimeoutMs?: number;
  readonly retries?: number;
  readonly maxBodyBytes?: number;
}

export interface RouteSpec {
  /** Unique in a table; "route-<index>" when the file gives none. */
  readonly name: string;
  readonly match: RouteMatch;
  readonly action: RouteAction;
  /** Only with a pool or split action. */
  readonly rewrite?: PathRewriteSpec;
  /** Replaces the Host header sent upstream (host or host:port). */
  readonly hostRewrite?: string;
  readonly requestHeaders?: HeaderOpsSpec;
  /** Applied to every response of the route, redirects and fixed responses included. */
  readonly responseHeaders?: HeaderOpsSpec;
  readonly overrides?: RouteOverrides;
  /** Whether a WebSocket handshake may take this route (default true); false answers it 403. */
  readonly websocket?: boolean;
  /** Rate limits, max_in_flight, auth, IP lists, CORS (src/model/edge.ts); only with pool or split. */
  readonly edge?: EdgeSpec;
}

/** The route a configuration without routes gets: everything to one pool. */
export function catchAllRoute(pool: string): RouteSpec {
  return { name: 'route-0', match: {}, action: { kind: 'pool', pool } };
}
