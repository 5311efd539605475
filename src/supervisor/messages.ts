// Messages between the control plane and proxy workers (rare: membership, drain, lifecycle).

import type { Backend } from '../http/context.js';

export type ToWorker =
  | { type: 'backends'; backends: Backend[]; seed: number }
  | { type: 'drain'; timeoutMs: number }
  | { type: 'crash' };

export type FromWorker = { type: 'ready' } | { type: 'drained' } | { type: 'fatal'; message: string };
