// OAuth 2.0 token introspection (RFC 7662) for opaque tokens: POST token=... to the endpoint
// (client credentials as HTTP Basic when given); an active token passes, with the route's claim
// rules and forwarded claims applied to the introspection response. Answers are cached (bounded)
// until the token's exp or cache_ttl_ms, whichever comes first; inactive answers for at most 10 s.

import type { HttpRequest } from 'uWebSockets.js';
import type { IntrospectionSpec } from '../model/edge.js';
import { claimsHold } from './claims.js';
import { BoundedCache, claimLine, deny, type Denial, type Outcome } from './outcome.js';
import { readToken } from './token.js';
import { NO_TOKEN } from './jwt.js';

const INACTIVE_TTL_MS = 10_000;
const INACTIVE: Denial = deny(401, 'invalid token\n', 'www-authenticate', 'Bearer error="invalid_token", error_description="inactive"');
const INSUFFICIENT: Denial = deny(403, 'token lacks a required claim\n', 'www-authenticate', 'Bearer error="insufficient_scope"');
const UNAVAILABLE: Denial = deny(503, 'token introspection unavailable\n', 'x-sluice-error', 'auth-unavailable', 'retry-after', '1');

export class IntrospectionAuth {
  readonly #spec: IntrospectionSpec;
  readonly #cache: BoundedCache<{ outcome: Outcome; until: number }>;
  readonly #authorization: string | null;

  constructor(spec: IntrospectionSpec) {
    this.#spec = spec;
    this.#cache = new BoundedCache(spec.cacheSize);
    this.#authorization =
      spec.clientId === null ? null : 'Basic ' + Buffer.from(encodeURIComponent(spec.clientId) + ':' + encodeURIComponent(spec.clientSecret ?? '')).toString('base64');
  }

  begin(req: HttpRequest, query: string): Outcome | Promise<Outcome> {
    const token = readToken(req, query, this.#spec.from);
    if (token === '') return NO_TOKEN;
    const hit = this.#cache.get(token);
    if (hit !== undefined) {
      if (Date.now() < hit.until) return hit.outcome;
      this.#cache.delete(token);
    }
    return this.#introspect(token);
  }

  async #introspect(token: string): Promise<Outcome> {
    let body: Record<string, unknown>;
    try {
      const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
      if (this.#authorization !== null) headers.authorization = this.#authorization;
      const r = await fetch(this.#spec.url, {
        method: 'POST',
        headers,
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
        signal: AbortSignal.timeout(this.#spec.timeoutMs),
      });
      if (r.status !== 200) return UNAVAILABLE;
      body = (await r.json()) as Record<string, unknown>;
      if (typeof body !== 'object' || body === null) return UNAVAILABLE;
    } catch {
      return UNAVAILABLE;
    }
    const now = Date.now();
    if (body.active !== true) {
      this.#cache.set(token, { outcome: INACTIVE, until: now + Math.min(INACTIVE_TTL_MS, this.#spec.cacheTtlMs) });
      return INACTIVE;
    }
    let outcome: Outcome;
    if (!claimsHold(this.#spec.claims, body)) outcome = INSUFFICIENT;
    else {
      let lines = '';
      for (const f of this.#spec.forwardClaims) lines += claimLine(f.header, body[f.claim]);
      outcome = { ok: true, lines, claims: body };
    }
    const exp = typeof body.exp === 'number' ? body.exp * 1000 : Infinity;
    if (exp <= now) return INACTIVE;
    this.#cache.set(token, { outcome, until: Math.min(exp, now + this.#spec.cacheTtlMs) });
    return outcome;
  }
}
