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
