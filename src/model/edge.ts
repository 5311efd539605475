// Edge policy of a route as declared (rate limits, concurrency cap, authentication, IP lists,
// CORS): plain data, so it travels to workers with the rest of the route. Files the policy names
// (JWKS, htpasswd) are read by the config loader and carried here as their contents, so a worker
// never touches the file system. src/edge compiles this once per load into the gate below.

import type { HttpRequest, HttpResponse } from 'uWebSockets.js';

/** What a rate limit counts by. A request without the header or claim is not counted by it. */
export type RateKey =
  | { readonly kind: 'client_ip' }
  | { readonly kind: 'route' }
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'jwt'; readonly claim: string };

export interface RateLimitSpec {
  readonly key: RateKey;
  /** Requests per `periodMs`. */
  readonly count: number;
  readonly periodMs: number;
  /** Requests admitted at once from a full bucket; default `count`. */
  readonly burst: number;
  /** Shared between Sluice hosts through this Redis (redis://host:port[/db]); null = this host only. */
  readonly global: string | null;
  /** Redis unreachable: 'open' falls back to the local limit, 'closed' answers 503. */
  readonly fail: 'open' | 'closed';
  /** The policy name in RateLimit-Policy; default the key kind. */
  readonly name: string;
}

/** Where a bearer token may come from, tried in order. */
export type TokenSource = { readonly kind: 'bearer' } | { readonly kind: 'cookie'; readonly name: string } | { readonly kind: 'query'; readonly name: string };

/** A claim that must hold: present (values empty) or equal to / containing one of `values`. */
export interface ClaimRule {
  readonly claim: string;
  readonly values: readonly string[];
}

export interface JwtSpec {
  /** JWKS document (a file's contents), or null when `jwksUrl` is given. */
  readonly jwks: unknown | null;
  readonly jwksUrl: string | null;
  /** An unknown kid refetches the JWKS URL at most once per this many ms. */
  readonly jwksCooldownMs: number;
  /** Shared secrets for HS256/384/512 (UTF-8 text). */
  readonly secret: string | null;
  readonly algorithms: readonly string[];
  readonly issuer: string | null;
  readonly audience: readonly string[];
  readonly leewaySec: number;
  readonly claims: readonly ClaimRule[];
  readonly from: readonly TokenSource[];
  /** claim → request header sent upstream. */
  readonly forwardClaims: readonly { readonly claim: string; readonly header: string }[];
  /** Remove the token from the upstream request (Authorization header; cookie/query stay). */
  readonly stripToken: boolean;
  readonly cacheSize: number;
}

export interface IntrospectionSpec {
  readonly url: string;
  readonly clientId: string | null;
  readonly clientSecret: string | null;
  readonly from: readonly TokenSource[];
  readonly claims: readonly ClaimRule[];
  readonly forwardClaims: readonly { readonly claim: string; readonly header: string }[];
  readonly cacheSize: number;
  /** Longest time an answer is reused (also bounded by the token's exp). */
  readonly cacheTtlMs: number;
  readonly timeoutMs: number;
}

export interface ApiKeysSpec {
  /** Lower-case header name, or null when `query` is used. */
  readonly header: string | null;
  readonly query: string | null;
  /** Lower-case hex SHA-256 of each accepted key. */
  readonly sha256: readonly string[];
}

export interface BasicSpec {
  /** user → bcrypt hash, from the htpasswd file. */
  readonly users: readonly { readonly user: string; readonly hash: string }[];
  readonly realm: string;
}

export interface ForwardAuthSpec {
  readonly url: string;
  /** Response headers of the auth service copied onto the upstream request (lower-case). */
  readonly copyHeaders: readonly string[];
  readonly timeoutMs: number;
  /** Reuse a 2xx answer for as long as the auth service's Cache-Control max-age says. */
  readonly cache: boolean;
}

export interface AuthSpec {
  readonly jwt?: JwtSpec;
  readonly introspection?: IntrospectionSpec;
  readonly apiKeys?: ApiKeysSpec;
  readonly basic?: BasicSpec;
  readonly forward?: ForwardAuthSpec;
}

export interface CorsSpec {
  /** Exact origins, "*" for any, or patterns with "*" standing for one or more DNS labels' text. */
  readonly origins: readonly string[];
  readonly methods: readonly string[];
  /** Lower-case request headers allowed. */
  readonly headers: readonly string[];
  readonly exposeHeaders: readonly string[];
  readonly credentials: boolean;
  /** Seconds; -1 = not sent. */
  readonly maxAge: number;
}

export interface EdgeSpec {
  readonly rateLimit?: readonly RateLimitSpec[];
  readonly maxInFlight?: number;
  readonly auth?: AuthSpec;
  readonly ipAllow?: readonly string[];
  readonly ipDeny?: readonly string[];
  readonly cors?: CorsSpec;
}

/**
 * What the gate needs from an exchange it lets through (src/http/forward.ts implements it): start
 * it, add request headers (claims) and response headers (CORS), answer it instead, learn its end.
 */
export interface GatedExchange {
  readonly cancelled: boolean;
  /** Start now, inside the request handler (corked already). */
  start(): void;
  /** An asynchronous check begins: the exchange counts as in flight (a drain waits for it). */
  wait(): void;
  /** Start later, after an asynchronous check (corks itself; nothing if the client is gone). */
  resume(): void;
  appendRequestHeaders(lines: string): void;
  addResponseHeaders(pairs: readonly string[]): void;
  deny(status: number, headers: readonly string[], body: string): void;
  onFinish(fn: () => void): void;
}

/** A route's compiled edge policy, as the data path sees it. */
export interface EdgeGate {
  /**
   * Runs synchronously while `req` is valid. false: the request was answered (or will be, by the
   * gate); true: build the exchange and hand it to admit().
   */
  check(req: HttpRequest, res: HttpResponse, method: string, query: string, client: string, trusted: boolean, proto: string): boolean;
  /** Right after check() returned true: start the exchange now, or once asynchronous checks pass. */
  admit(ex: GatedExchange): void;
}
