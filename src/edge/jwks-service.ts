// JWKS URLs are fetched on the control plane, once per process, not once per worker: workers ask
// over a BroadcastChannel ("want" at first use, "refresh" on a token naming an unknown kid), the
// main thread fetches (at most once per cooldown per URL for refreshes, and again every
// MAX_AGE_MS to follow rotation) and broadcasts the key set to every worker. A worker keeps the
// last set it received; a failed fetch keeps the old one.

import { BroadcastChannel } from 'node:worker_threads';
import type { Logger } from 'pino';

export const JWKS_CHANNEL = 'sluice:jwks';
/** Keys are refetched this often even when every kid is known (rotation without new kids). */
export const MAX_AGE_MS = 10 * 60_000;
const FETCH_TIMEOUT_MS = 5000;
const MAX_JWKS_BYTES = 1024 * 1024;

export type JwksMessage =
  | { readonly type: 'want'; readonly url: string }
  | { readonly type: 'refresh'; readonly url: string; readonly cooldownMs: number }
  | { readonly type: 'keys'; readonly url: string; readonly jwks: unknown }
  | { readonly type: 'error'; readonly url: string; readonly message: string };

interface Known {
  jwks: unknown | null;
  fetchedAt: number;
  fetching: boolean;
}

/** Control plane: answer workers' requests for key sets. Returns a stop function. */
export function startJwksService(log: Logger): () => void {
  const channel = new BroadcastChannel(JWKS_CHANNEL);
  channel.unref();
  const known = new Map<string, Known>();
  const send = (m: JwksMessage): void => channel.postMessage(m);

  const fetchKeys = (url: string, k: Known): void => {
    k.fetching = true;
    k.fetchedAt = Date.now();
    void (async () => {
      try {
        const r = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), headers: { accept: 'application/json' } });
        if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
        const text = await r.text();
        if (text.length > MAX_JWKS_BYTES) throw new Error('larger than 1 MiB');
        const jwks = JSON.parse(text) as { keys?: unknown };
        if (typeof jwks !== 'object' || jwks === null || !Array.isArray(jwks.keys)) throw new Error('not a JWKS document ({ "keys": [...] })');
        k.jwks = jwks;
        send({ type: 'keys', url, jwks });
      } catch (err) {
        log.warn({ jwks: url, err: (err as Error).message }, 'JWKS fetch failed; workers keep the keys they have');
        send({ type: 'error', url, message: (err as Error).message });
      } finally {
        k.fetching = false;
      }
    })();
  };

  channel.onmessage = (event: unknown) => {
    const m = (event as { data: JwksMessage }).data;
    if (m.type !== 'want' && m.type !== 'refresh') return;
    let k = known.get(m.url);
    if (k === undefined) known.set(m.url, (k = { jwks: null, fetchedAt: 0, fetching: false }));
    if (k.fetching) return;
    const age = Date.now() - k.fetchedAt;
    if (m.type === 'want' && k.jwks !== null && age < MAX_AGE_MS) return send({ type: 'keys', url: m.url, jwks: k.jwks });
    if (m.type === 'refresh' && age < m.cooldownMs && k.jwks !== null) return send({ type: 'keys', url: m.url, jwks: k.jwks });
    fetchKeys(m.url, k);
  };

  const timer = setInterval(() => {
    const now = Date.now();
    for (const [url, k] of known) if (!k.fetching && now - k.fetchedAt >= MAX_AGE_MS) fetchKeys(url, k);
  }, 30_000);
  timer.unref();
  return () => {
    clearInterval(timer);
    channel.close();
  };
}
