// A route's edge policy, compiled once per load in each worker, run by forward() through one
// hook (EdgeGate, src/model/edge.ts). Order, cheapest and least trusting first:
//   1. ip_deny / ip_allow (403)            4. rate limits keyed by jwt:CLAIM, after auth (429)
//   2. CORS preflight, answered here        5. max_in_flight (503)
//   3. other rate limits (429), then auth (401/403; jwt, introspection, api_keys, basic, forward)
// Everything that needs the request is read synchronously in check(); what must wait (a token
// verification, an introspection, a forward-auth subrequest, a Redis lease) finishes in admit(),
// after the exchange exists (it holds onAborted and buffers the body meanwhile).
// The hot path with nothing to wait for allocates nothing beyond what the checks themselves do.

import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { EdgeGate, EdgeSpec, GatedExchange, RateLimitSpec } from '../model/edge.js';
import { E, MAX_ROUTES, edgeCell, routeInFlightCell } from '../state/layout.js';
import { ApiKeyAuth } from './api-keys.js';
import { BasicAuth } from './basic.js';
import { CidrSet, parseCidr, type Cidr } from './cidr.js';
import { effectiveClient } from './client-ip.js';
import { Cors } from './cors.js';
import { ForwardAuth } from './forward-auth.js';
import { IntrospectionAuth } from './introspection.js';
import { JwtAuth } from './jwt.js';
import { deny, PASS, type Denial, type Outcome, type Pass } from './outcome.js';
import { RateLimitParams, type RateTable } from './rate-table.js';
import { RedisLimit, redact } from './redis-limit.js';

/** What every policy of a worker shares. */
export interface EdgeEnv {
  readonly words: Int32Array;
  readonly rates: RateTable;
  readonly trusted: ReadonlySet<string>;
  readonly log: Logger;
}

const KIND_COUNTER = { client_ip: E.LIMITED_CLIENT_IP, header: E.LIMITED_HEADER, jwt: E.LIMITED_JWT, route: E.LIMITED_ROUTE } as const;
const IP_DENIED: Denial = deny(403, 'forbidden by the route IP policy\n', 'x-sluice-error', 'ip-denied');
const OVERLOADED: Denial = deny(503, 'route at max_in_flight\n', 'x-sluice-error', 'overloaded', 'retry-after', '1');
const LIMIT_UNAVAILABLE: Denial = deny(503, 'rate limit store unavailable\n', 'x-sluice-error', 'rate-limit-unavailable', 'retry-after', '1');
/** Log a Redis fallback at most this often per limit. */
const FALLBACK_LOG_MS = 10_000;

class Limit {
  readonly spec: RateLimitSpec;
  readonly params: RateLimitParams;
  readonly counter: number;
  readonly redis: RedisLimit | null;
  /** RateLimit-Policy value: "name";q=burst;w=seconds to refill the bucket. */
  readonly policy: string;
  lastFallbackLog = 0;

  constructor(spec: RateLimitSpec, identity: string, log: Logger) {
    this.spec = spec;
    this.params = new RateLimitParams(identity, spec.count, spec.periodMs, spec.burst);
    this.counter = KIND_COUNTER[spec.key.kind];
    this.redis = spec.global === null ? null : new RedisLimit(spec.global, identity, spec.count, spec.periodMs, spec.burst, log);
    this.policy = `"${spec.name}";q=${spec.burst};w=${Math.max(1, Math.ceil((spec.periodMs / spec.count) * spec.burst / 1000))}`;
  }

  refused(retryAfterMs: number): Denial {
    const s = Math.max(1, Math.ceil(retryAfterMs / 1000));
    return deny(429, 'rate limit exceeded\n', 'retry-after', String(s), 'ratelimit-policy', this.policy, 'ratelimit', `"${this.spec.name}";r=0;t=${s}`);
  }
}

type Auth = { begin(req: HttpRequest, query: string): Outcome | Promise<Outcome> };

export class EdgePolicy implements EdgeGate {
  readonly #env: EdgeEnv;
  readonly #route: number;
  readonly #routeName: string;
  readonly #allow: CidrSet | null;
  readonly #deny: CidrSet | null;
  readonly #cors: Cors | null;
  readonly #limits: Limit[];
  readonly #claimLimits: Limit[];
  readonly #auth: Auth | null;
  readonly #forward: ForwardAuth | null;
  readonly #maxInFlight: number;
  readonly #inFlightWords: Int32Array;
  readonly #inFlightCell: number;
  readonly #release: () => void;
  readonly #needsIp: boolean;

  // Scratch of the last check(), read by the admit() that follows it at once (same worker, same turn).
  #pending: Promise<Outcome> | null = null;
  #lines = '';
  #responseHeaders: readonly string[] | null = null;
  #holding = false;

  constructor(spec: EdgeSpec, route: { readonly index: number; readonly name: string }, env: EdgeEnv) {
    this.#env = env;
    this.#route = route.index;
    this.#routeName = route.name;
    const cidrs = (list: readonly string[] | undefined) => (list === undefined ? null : new CidrSet(list.map((c) => parseCidr(c) as Cidr)));
    this.#allow = cidrs(spec.ipAllow);
    this.#deny = cidrs(spec.ipDeny);
    this.#cors = spec.cors === undefined ? null : new Cors(spec.cors);
    const all = (spec.rateLimit ?? []).map((l, i) => new Limit(l, `${route.name}/${i}/${l.count}/${l.periodMs}/${l.burst}`, env.log));
    this.#limits = all.filter((l) => l.spec.key.kind !== 'jwt');
    this.#claimLimits = all.filter((l) => l.spec.key.kind === 'jwt');
    this.#needsIp = this.#allow !== null || this.#deny !== null || this.#limits.some((l) => l.spec.key.kind === 'client_ip');
    const a = spec.auth;
    this.#forward = a?.forward === undefined ? null : new ForwardAuth(a.forward);
    this.#auth =
      a?.jwt !== undefined ? new JwtAuth(a.jwt)
      : a?.introspection !== undefined ? new IntrospectionAuth(a.introspection)
      : a?.apiKeys !== undefined ? new ApiKeyAuth(a.apiKeys)
      : a?.basic !== undefined ? new BasicAuth(a.basic)
      : null;
    this.#maxInFlight = spec.maxInFlight ?? 0;
    // Past the shared region's MAX_ROUTES the cap is per worker (a table that large is unusual).
    this.#inFlightWords = route.index < MAX_ROUTES ? env.words : new Int32Array(1);
    this.#inFlightCell = route.index < MAX_ROUTES ? routeInFlightCell(route.index) : 0;
    this.#release = () => {
      Atomics.sub(this.#inFlightWords, this.#inFlightCell, 1);
    };
  }

  check(req: HttpRequest, res: HttpResponse, method: string, query: string, peer: string, peerTrusted: boolean, proto: string): boolean {
    this.#pending = null;
    this.#lines = '';
    this.#responseHeaders = null;
    this.#holding = false;
    const client = this.#needsIp ? effectiveClient(req, peer, peerTrusted, this.#env.trusted) : peer;

    if ((this.#deny !== null && this.#deny.has(client)) || (this.#allow !== null && !this.#allow.has(client))) {
      this.#count(E.IP_DENIED);
      return this.#answer(req, res, IP_DENIED);
    }

    const cors = this.#cors;
    if (cors !== null) {
      const origin = req.getHeader('origin');
      if (origin !== '') {
        const asked = method === 'OPTIONS' ? req.getHeader('access-control-request-method') : '';
        if (asked !== '') {
          const p = cors.preflight(origin, asked, req.getHeader('access-control-request-headers'));
          this.#count(p.status === 204 ? E.CORS_PREFLIGHT : E.CORS_REFUSED);
          return this.#answer(req, res, { ok: false, status: p.status, headers: p.headers, body: '' });
        }
        this.#responseHeaders = cors.actual(origin);
      }
    }

    let waits: Promise<Outcome>[] | null = null;
    for (let i = 0; i < this.#limits.length; i++) {
      const l = this.#limits[i]!;
      const k = l.spec.key;
      const value = k.kind === 'client_ip' ? client : k.kind === 'route' ? '' : k.kind === 'header' ? req.getHeader(k.name) : '';
      if (k.kind === 'header' && value === '') continue;
      const r = this.#take(l, value);
      if (r === null) continue;
      if (r instanceof Promise) (waits ??= []).push(r);
      else return this.#answer(req, res, r);
    }

    let auth: Outcome | Promise<Outcome> = PASS;
    if (this.#forward !== null) auth = this.#forward.begin(req, method, query, client, proto);
    else if (this.#auth !== null) auth = this.#auth.begin(req, query);
    if (!(auth instanceof Promise)) {
      if (!auth.ok) return this.#answer(req, res, this.#counted(auth) as Denial);
      this.#lines = auth.lines;
      if (this.#claimLimits.length > 0) {
        const r = this.#claimLimitsFor(auth);
        if (r instanceof Promise) (waits ??= []).push(r);
        else if (!r.ok) return this.#answer(req, res, r as Denial);
      }
    }

    if (this.#maxInFlight > 0) {
      if (Atomics.add(this.#inFlightWords, this.#inFlightCell, 1) >= this.#maxInFlight) {
        Atomics.sub(this.#inFlightWords, this.#inFlightCell, 1);
        this.#count(E.OVERLOADED);
        return this.#answer(req, res, OVERLOADED);
      }
      this.#holding = true;
    }

    if (waits !== null || auth instanceof Promise) this.#pending = this.#settle(waits, auth);
    return true;
  }

  admit(ex: GatedExchange): void {
    if (this.#responseHeaders !== null) ex.addResponseHeaders(this.#responseHeaders);
    if (this.#holding) ex.onFinish(this.#release);
    if (this.#lines !== '') ex.appendRequestHeaders(this.#lines);
    const pending = this.#pending;
    if (pending === null) return ex.start();
    this.#pending = null;
    ex.wait();
    pending.then(
      (o) => {
        if (ex.cancelled) return;
        if (!o.ok) return ex.deny(o.status, o.headers, o.body);
        if (o.lines !== '') ex.appendRequestHeaders(o.lines);
        ex.resume();
      },
      (err: Error) => {
        this.#env.log.error({ err: err.message, route: this.#routeName }, 'edge policy: check failed');
        if (!ex.cancelled) ex.deny(500, ['x-sluice-error', 'edge'], 'internal error\n');
      },
    );
  }

  /** Waits for every asynchronous part; the first denial in check order wins. */
  async #settle(waits: Promise<Outcome>[] | null, auth: Outcome | Promise<Outcome>): Promise<Outcome> {
    if (waits !== null) {
      for (const w of waits) {
        const o = await w;
        if (!o.ok) return o;
      }
    }
    if (!(auth instanceof Promise)) return auth.ok ? PASS : auth;
    const a = this.#counted(await auth);
    if (!a.ok || this.#claimLimits.length === 0) return a;
    const r = await this.#claimLimitsFor(a);
    return r.ok ? a : r;
  }

  #claimLimitsFor(auth: Pass): Outcome | Promise<Outcome> {
    let waits: Promise<Outcome>[] | null = null;
    for (const l of this.#claimLimits) {
      const k = l.spec.key;
      if (k.kind !== 'jwt' || auth.claims === null) continue;
      const v = auth.claims[k.claim];
      if (v === undefined || v === null) continue;
      const r = this.#take(l, typeof v === 'string' ? v : JSON.stringify(v));
      if (r === null) continue;
      if (r instanceof Promise) (waits ??= []).push(r);
      else return r;
    }
    if (waits === null) return PASS;
    return Promise.all(waits).then((all) => all.find((o) => !o.ok) ?? PASS);
  }

  /** null: admitted; a Denial: refused now; a promise: Redis is being asked. */
  #take(l: Limit, value: string): Denial | null | Promise<Outcome> {
    if (l.redis !== null) {
      const a = l.redis.take(value);
      if (a instanceof Promise) return a.then((x) => this.#leaseOutcome(l, value, x.ok === true ? null : x.ok === false ? x.retryAfterMs : -1));
      if (a.ok === true) return null;
      if (a.ok === false) return this.#refuse(l, a.retryAfterMs);
      return this.#fallback(l, value);
    }
    const rates = this.#env.rates;
    return rates.take(l.params, value) ? null : this.#refuse(l, rates.retryAfterMs);
  }

  #leaseOutcome(l: Limit, value: string, retryAfterMs: number | null): Outcome {
    if (retryAfterMs === null) return PASS;
    if (retryAfterMs >= 0) return this.#refuse(l, retryAfterMs);
    return this.#fallback(l, value) ?? PASS;
  }

  /** Redis unreachable: the local shared-table limit (fail: open), or 503 (fail: closed). */
  #fallback(l: Limit, value: string): Denial | null {
    const closed = l.spec.fail === 'closed';
    this.#count(closed ? E.REDIS_CLOSED : E.REDIS_FALLBACK);
    const now = Date.now();
    if (now - l.lastFallbackLog > FALLBACK_LOG_MS) {
      l.lastFallbackLog = now;
      this.#env.log.warn({ route: this.#routeName, redis: redact(l.spec.global ?? ''), fail: l.spec.fail }, closed ? 'rate limit: Redis unreachable, answering 503 (fail: closed)' : 'rate limit: Redis unreachable, using the local limit (fail: open)');
    }
    if (closed) return LIMIT_UNAVAILABLE;
    const rates = this.#env.rates;
    return rates.take(l.params, value) ? null : this.#refuse(l, rates.retryAfterMs);
  }

  #refuse(l: Limit, retryAfterMs: number): Denial {
    this.#count(l.counter);
    return l.refused(retryAfterMs);
  }

  #counted(o: Outcome): Outcome {
    // 403 for claims; 5xx when the keys, the introspection endpoint or the auth service could not be
    // reached; any other refusal (a forward-auth redirect to a login page) counts as unauthorized.
    if (!o.ok) this.#count(o.status === 403 ? E.FORBIDDEN : o.status >= 500 ? E.AUTH_UNAVAILABLE : E.UNAUTHORIZED);
    return o;
  }

  #count(counter: number): void {
    if (this.#route < MAX_ROUTES) Atomics.add(this.#env.words, edgeCell(this.#route, counter), 1);
  }

  /**
   * Answer here. Without a body: at once (inside the uWS handler, corked). With one: the body is
   * not read, so the connection is closed after the answer, and the answer is written on the next
   * turn, as forward.ts refuse() does: while a response is pending uWS drops the connection if
   * more arrives, instead of parsing the unread body as a request. Cold path: a closure is fine.
   */
  #answer(req: HttpRequest, res: HttpResponse, d: Denial): false {
    const hasBody = req.getHeader('transfer-encoding') !== '' || (req.getHeader('content-length') !== '' && req.getHeader('content-length') !== '0');
    const extra = this.#responseHeaders;
    if (!hasBody) {
      writeDenial(res, d, extra);
      res.end(d.body);
      return false;
    }
    let gone = false;
    res.onAborted(() => {
      gone = true;
    });
    setImmediate(() => {
      if (gone) return;
      res.cork(() => {
        writeDenial(res, d, extra);
        res.end(d.body, true);
      });
    });
    return false;
  }
}

const REASONS: Record<number, string> = {
  204: '204 No Content',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  429: '429 Too Many Requests',
  500: '500 Internal Server Error',
  502: '502 Bad Gateway',
  503: '503 Service Unavailable',
};

/** "401 Unauthorized", or the bare code for a status an auth service chose. */
export function statusLine(status: number): string {
  return REASONS[status] ?? String(status) + ' ' + (status < 400 ? 'Redirect' : 'Error');
}

/** Status and headers of an edge answer (the body is the caller's to end with). */
export function writeDenial(res: HttpResponse, d: Denial, extra: readonly string[] | null): void {
  res.writeStatus(statusLine(d.status));
  for (let i = 0; i < d.headers.length; i += 2) res.writeHeader(d.headers[i]!, d.headers[i + 1]!);
  if (extra !== null) for (let i = 0; i < extra.length; i += 2) res.writeHeader(extra[i]!, extra[i + 1]!);
  if (d.body !== '') res.writeHeader('content-type', 'text/plain');
}
