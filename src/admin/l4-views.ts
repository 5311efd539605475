// The L4 listeners as /api/status (and the status page) show them: what is configured (kind,
// address, pools, thread) joined with the counters the L4 threads reported.

import type { L4ListenerSnapshot } from '../l4/snapshot.js';

/** What the admin server needs of the L4 supervisor (it satisfies this as is). */
export interface L4Source {
  listeners(): { name: string; kind: string; address: string; thread: number; running: boolean }[];
  stats(timeoutMs: number): Promise<L4ListenerSnapshot[]>;
  readonly restarts: number;
}

export interface L4ListenerView {
  name: string;
  kind: string;
  address: string;
  thread: number;
  running: boolean;
  /** null when its thread did not answer in time (or is restarting). */
  stats: Omit<L4ListenerSnapshot, 'name' | 'kind' | 'address'> | null;
}

export function l4Views(source: L4Source, stats: readonly L4ListenerSnapshot[]): L4ListenerView[] {
  const byName = new Map(stats.map((s) => [s.name, s]));
  return source.listeners().map((l) => {
    const s = byName.get(l.name);
    if (s === undefined) return { ...l, stats: null };
    const { name: _n, kind: _k, address: _a, ...counters } = s;
    return { ...l, stats: counters };
  });
}
