// HTTP Basic authentication (RFC 7617) against an htpasswd file of bcrypt hashes (bcryptjs).
// A bcrypt comparison is deliberately slow (tens of ms at cost 10), so it runs asynchronously
// (bcryptjs yields between rounds) and a successful one is remembered (bounded, keyed by a
// SHA-256 of user and password, never the password itself) so repeat requests pass at once.

import { createHash } from 'node:crypto';
import type { HttpRequest } from 'uWebSockets.js';
import bcrypt from 'bcryptjs';
import type { BasicSpec } from '../model/edge.js';
import { BoundedCache, deny, PASS, type Denial, type Outcome } from './outcome.js';

const VERIFIED_MAX = 1024;
/** A remembered success is re-checked after this long (a password changed by a reload is refused again). */
const VERIFIED_TTL_MS = 5 * 60_000;

export class BasicAuth {
  readonly #users: Map<string, string>;
  readonly #challenge: Denial;
  readonly #verified = new BoundedCache<number>(VERIFIED_MAX);

  constructor(spec: BasicSpec) {
    this.#users = new Map(spec.users.map((u) => [u.user, u.hash]));
    this.#challenge = deny(401, 'authentication required\n', 'www-authenticate', `Basic realm="${spec.realm.replace(/["\\]/g, '')}", charset="UTF-8"`);
  }

  begin(req: HttpRequest): Outcome | Promise<Outcome> {
    const h = req.getHeader('authorization');
    if (h.length < 7 || h.slice(0, 6).toLowerCase() !== 'basic ') return this.#challenge;
    const decoded = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return this.#challenge;
    const user = decoded.slice(0, colon);
    const hash = this.#users.get(user);
    if (hash === undefined) return this.#challenge;
    const id = createHash('sha256').update(decoded).digest('base64');
    const until = this.#verified.get(id);
    if (until !== undefined && Date.now() < until) return PASS;
    return bcrypt.compare(decoded.slice(colon + 1), hash).then(
      (ok) => {
        if (!ok) return this.#challenge;
        this.#verified.set(id, Date.now() + VERIFIED_TTL_MS);
        return PASS;
      },
      () => this.#challenge,
    );
  }
}
