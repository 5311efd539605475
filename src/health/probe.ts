// What one health probe reports, and the shape every probe has. A probe never throws or rejects:
// a refused connection, a timeout and a bad status are all just failed results with a reason.

import type { Upstream } from '../config/types.js';

export interface ProbeResult {
  readonly ok: boolean;
  /** Short reason for logs and the admin API: "connected", "status 200", "connect ECONNREFUSED", "timeout after 1000 ms". */
  readonly detail: string;
}

/** Probe `upstream` once, giving up after `timeoutMs`; `signal` aborts it (checker stopped). */
export type Probe = (upstream: Upstream, timeoutMs: number, signal: AbortSignal) => Promise<ProbeResult>;

/** "ECONNREFUSED" from a Node socket error, else its message. */
export function errorCode(err: Error): string {
  return (err as NodeJS.ErrnoException).code ?? err.message;
}

/**
 * The settle-once machinery every probe shares: the returned `finish` resolves the probe's promise
 * the first time it is called (later calls are ignored), stops the timer and the abort listener,
 * and destroys the probe's connection. The probe fails by itself after `timeoutMs` or on abort.
 */
export function settleOnce(
  resolve: (result: ProbeResult) => void,
  conn: { destroy(): void },
  timeoutMs: number,
  signal: AbortSignal,
): (ok: boolean, detail: string) => void {
  let done = false;
  const finish = (ok: boolean, detail: string): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
    conn.destroy();
    resolve({ ok, detail });
  };
  const onAbort = (): void => finish(false, 'aborted');
  const timer = setTimeout(() => finish(false, `timeout after ${timeoutMs} ms`), timeoutMs);
  signal.addEventListener('abort', onAbort, { once: true });
  return finish;
}
