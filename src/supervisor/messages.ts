// Messages between the control plane and proxy workers (rare: membership, drain, lifecycle).

import type { Backend } from '../model/upstream.js';
import type { ResolvedConfig } from '../config/types.js';
import type { LatencySnapshot } from '../metrics/latency.js';

export type ToWorker =
  /** `generation`: the table's membership generation this membership was published at (ack it). */
  | { type: 'backends'; backends: Backend[]; seed: number; generation: number }
  /**
   * Reload (SIGHUP): new settings, pools, routes and the membership of every pool together, applied
   * in one step (the worker compiles config.routes and builds one policy per config.pools entry).
   */
  | { type: 'config'; config: ResolvedConfig; backends: Backend[]; seed: number; generation: number }
  | { type: 'drain'; timeoutMs: number }
  | { type: 'crash' }
  /** The warm spare takes a dead worker's place: start listening. */
  | { type: 'activate' }
  /** Admin scrape: reply with this worker's latency histograms under the same id. */
  | { type: 'latency'; id: number };

export type FromWorker =
  | { type: 'ready' }
  /**
   * The membership of `generation` is in use: no new request picks a backend it left out, so the
   * control plane may reuse such a slot once the requests still holding it are done.
   */
  | { type: 'applied'; generation: number }
  /** A spare is loaded and waits for 'activate'. */
  | { type: 'standby' }
  /** An uncaught exception: the worker is closing its sockets and will exit. */
  | { type: 'crashing' }
  /** After 'crashing': every socket is closed, so terminate() can no longer abort the process. */
  | { type: 'closed' }
  | { type: 'drained' }
  | { type: 'fatal'; message: string }
  | { type: 'latency'; id: number; snapshot: LatencySnapshot };
