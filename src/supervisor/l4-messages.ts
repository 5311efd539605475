// Messages between the control plane and the L4 threads (workers/l4-worker.ts).

import type { ResolvedConfig } from '../config/types.js';
import type { Backend } from '../model/upstream.js';
import type { L4ListenerSnapshot } from '../l4/snapshot.js';

export type ToL4 =
  /** Reload or membership change: new pools for every listener; `listeners` are this thread's. */
  | { type: 'config'; config: ResolvedConfig; backends: Backend[]; seed: number; listeners: string[] }
  | { type: 'drain'; timeoutMs: number }
  | { type: 'stats'; id: number }
  /** Test hook (SLUICE_TEST_HOOKS=1): throw, as a bug would. */
  | { type: 'crash' };

export type FromL4 =
  | { type: 'ready'; addresses: { name: string; port: number }[] }
  | { type: 'fatal'; message: string }
  | { type: 'stats'; id: number; listeners: L4ListenerSnapshot[] }
  | { type: 'drained' };
