// JWT bearer authentication (RFC 7519, RFC 6750) with jose: keys from a JWKS document (a file,
// read by the config loader), a JWKS URL (fetched on the control plane and broadcast to workers,
// refetched on an unknown kid at most once per cooldown: remote-jwks.ts), or a shared secret. iss, aud,
// exp and nbf are checked with leeway, then the route's claim rules (403 when they fail).
//
// Verification is asynchronous (WebCrypto) and costs tens of µs for RS256, so verified tokens are
// cached (bounded, keyed by the token itself, until exp): a warm token is checked synchronously.

import type { HttpRequest } from 'uWebSockets.js';
import { createLocalJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyOptions } from 'jose';
import { JwksUnavailable, remoteJwks } from './remote-jwks.js';
import type { JwtSpec } from '../model/edge.js';
import { claimsHold } from './claims.js';
import { BoundedCache, claimLine, deny, type Denial, type Outcome, type Pass } from './outcome.js';
import { readToken } from './token.js';


type KeyInput = Parameters<typeof jwtVerify>[1];

interface Cached {
  readonly outcome: Outcome;
  /** Unix ms after which the entry is not used (exp + leeway), Infinity without exp. */
  readonly until: number;
}

export const NO_TOKEN: Denial = deny(401, 'missing bearer token\n', 'www-authenticate', 'Bearer realm="sluice"');

function invalid(reason: string): Denial {
  const safe = reason.replace(/["\\\r\n]/g, "'");
  return deny(401, 'invalid token\n', 'www-authenticate', `Bearer error="invalid_token", error_description="${safe}"`);
}

const INSUFFICIENT: Denial = deny(403, 'token lacks a required claim\n', 'www-authenticate', 'Bearer error="insufficient_scope"');

export class JwtAuth {
  readonly #spec: JwtSpec;
  readonly #key: KeyInput;
  readonly #options: JWTVerifyOptions;
  readonly #cache: BoundedCache<Cached>;
  readonly #clock: () => number;

  constructor(spec: JwtSpec, clock: () => number = Date.now) {
    this.#spec = spec;
    this.#clock = clock;
    if (spec.secret !== null) this.#key = new TextEncoder().encode(spec.secret);
    else if (spec.jwksUrl !== null) this.#key = remoteJwks(spec.jwksUrl, spec.jwksCooldownMs).getKey as KeyInput;
    else this.#key = createLocalJWKSet(spec.jwks as Parameters<typeof createLocalJWKSet>[0]);
    this.#options = {
      algorithms: [...spec.algorithms],
      clockTolerance: spec.leewaySec,
      ...(spec.issuer !== null ? { issuer: spec.issuer } : {}),
      ...(spec.audience.length > 0 ? { audience: [...spec.audience] } : {}),
    };
    this.#cache = new BoundedCache(spec.cacheSize);
  }

  begin(req: HttpRequest, query: string): Outcome | Promise<Outcome> {
    const token = readToken(req, query, this.#spec.from);
    if (token === '') return NO_TOKEN;
    const hit = this.#cache.get(token);
    if (hit !== undefined) {
      if (this.#clock() < hit.until) return hit.outcome;
      this.#cache.delete(token);
    }
    return this.#verify(token);
  }

  async #verify(token: string): Promise<Outcome> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#key as Parameters<typeof jwtVerify>[1] & Uint8Array, this.#options));
    } catch (err) {
      // Key-fetch trouble is ours, not the client's: say so without blaming the token.
      if (err instanceof JwksUnavailable) {
        return deny(503, 'token keys unavailable\n', 'x-sluice-error', 'auth-unavailable', 'retry-after', '1');
      }
      return invalid(err instanceof errors.JOSEError ? err.code : 'malformed token');
    }
    let outcome: Outcome;
    if (!claimsHold(this.#spec.claims, payload)) outcome = INSUFFICIENT;
    else {
      let lines = '';
      for (const f of this.#spec.forwardClaims) lines += claimLine(f.header, payload[f.claim]);
      outcome = { ok: true, lines, claims: payload } satisfies Pass;
    }
    const until = typeof payload.exp === 'number' ? (payload.exp + this.#spec.leewaySec) * 1000 : Infinity;
    this.#cache.set(token, { outcome, until });
    return outcome;
  }
}
