// A worker's view of a JWKS URL: the key set the control plane last broadcast (jwks-service.ts).
// A token whose kid is not in it asks for a refresh and waits for the answer (bounded), so a key
// rotated in at the identity provider is picked up at its first use.

import { BroadcastChannel } from 'node:worker_threads';
import { createLocalJWKSet, errors, type JWSHeaderParameters, type FlattenedJWSInput } from 'jose';
import { JWKS_CHANNEL, type JwksMessage } from './jwks-service.js';

/** How long a verification waits for the control plane's answer before giving up (503). */
const WAIT_MS = 5000;

type KeySet = ReturnType<typeof createLocalJWKSet>;
type Key = Awaited<ReturnType<KeySet>>;

let channel: BroadcastChannel | null = null;
const sets = new Map<string, RemoteJwks>();

function open(): BroadcastChannel {
  if (channel !== null) return channel;
  const c = new BroadcastChannel(JWKS_CHANNEL);
  c.unref();
  c.onmessage = (event: unknown) => {
    const m = (event as { data: JwksMessage }).data;
    if (m.type === 'keys' || m.type === 'error') sets.get(m.url)?.receive(m);
  };
  channel = c;
  return c;
}

/** One per URL per worker, shared by every route that names it. */
export function remoteJwks(url: string, cooldownMs: number): RemoteJwks {
  let s = sets.get(url);
  if (s === undefined) sets.set(url, (s = new RemoteJwks(url, cooldownMs)));
  return s;
}

export class JwksUnavailable extends Error {
  override readonly name = 'JwksUnavailable';
}

export class RemoteJwks {
  readonly #url: string;
  readonly #cooldownMs: number;
  #keys: KeySet | null = null;
  #waiters: (() => void)[] = [];

  constructor(url: string, cooldownMs: number) {
    this.#url = url;
    this.#cooldownMs = cooldownMs;
    open().postMessage({ type: 'want', url } satisfies JwksMessage);
  }

  receive(m: JwksMessage): void {
    if (m.type === 'keys') {
      try {
        this.#keys = createLocalJWKSet(m.jwks as Parameters<typeof createLocalJWKSet>[0]);
      } catch {
        /* a malformed set keeps the old one */
      }
    }
    for (const w of this.#waiters.splice(0)) w();
  }

  /** The next answer from the control plane, or a timeout. */
  #next(msg: JwksMessage): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== done);
        reject(new JwksUnavailable(`no key set for ${this.#url} within ${WAIT_MS} ms`));
      }, WAIT_MS);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.#waiters.push(done);
      open().postMessage(msg);
    });
  }

  /** jose's key lookup: the kid's key, after one refresh if it is unknown. */
  readonly getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<Key> => {
    if (this.#keys === null) await this.#next({ type: 'want', url: this.#url });
    if (this.#keys === null) throw new JwksUnavailable(`no key set for ${this.#url}`);
    try {
      return await this.#keys(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      await this.#next({ type: 'refresh', url: this.#url, cooldownMs: this.#cooldownMs });
      return this.#keys(header, token);
    }
  };
}
