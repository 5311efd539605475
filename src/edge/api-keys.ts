// API keys from a header or a query parameter, checked against SHA-256 hashes from the config:
// the keys themselves appear in no file, log or error message.

import { createHash } from 'node:crypto';
import type { HttpRequest } from 'uWebSockets.js';
import type { ApiKeysSpec } from '../model/edge.js';
import { deny, PASS, type Denial, type Outcome } from './outcome.js';
import { queryParam } from './token.js';

const MISSING: Denial = deny(401, 'missing API key\n', 'www-authenticate', 'ApiKey realm="sluice"');
const WRONG: Denial = deny(401, 'invalid API key\n', 'www-authenticate', 'ApiKey realm="sluice", error="invalid_key"');

export class ApiKeyAuth {
  readonly #spec: ApiKeysSpec;
  readonly #hashes: Set<string>;

  constructor(spec: ApiKeysSpec) {
    this.#spec = spec;
    this.#hashes = new Set(spec.sha256.map((h) => h.toLowerCase()));
  }

  begin(req: HttpRequest, query: string): Outcome {
    const key = this.#spec.header !== null ? req.getHeader(this.#spec.header) : queryParam(query, this.#spec.query!);
    if (key === '') return MISSING;
    return this.#hashes.has(createHash('sha256').update(key).digest('hex')) ? PASS : WRONG;
  }
}
