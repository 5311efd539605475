// The balancing contract: one small interface, one file per policy, one registry line each.
//
// A policy is built when a pool's membership changes (that is when weight tables, rings and Maglev
// tables are computed) and only read per request: `pick` must not allocate.

import type { SharedTable } from '../state/table.js';

/** One backend of a pool, as the control plane published it. */
export interface Member {
  /** Slot in the shared table. */
  readonly slot: number;
  /** Configured weight (> 0), before WEIGHT_SCALE. The live weight is in the table. */
  readonly weight: number;
  /** Stable identity used by hashing policies ("host:port"). */
  readonly id: string;
}

/** Per-request input, reused by the caller: fill and pass, never retained by a policy. */
export interface PickContext {
  /** Table time (SharedTable.now()). */
  now: number;
  /** A slot to avoid (the one that just failed, for a retry); -1 for none. */
  exclude: number;
  /** Affinity key for hashing policies (32-bit hash), or -1 when the request has none. */
  hash: number;
}

export interface PolicyOptions {
  /** Below this share of available members (percent), balance across all of them (panic mode). */
  panicThresholdPercent: number;
  /** Envoy least-request active-request bias. */
  leastRequestBias: number;
  /** Peak-EWMA decay time constant, ms. */
  ewmaDecayMs: number;
  /** Peak-EWMA starting latency for a backend with no sample, ms. */
  ewmaDefaultRttMs: number;
  /** Slow-start window, ms (0 = off). */
  slowStartMs: number;
  /** Maglev lookup table size (prime). */
  maglevTableSize: number;
  /** Per-instance seed so a fleet of proxies does not pick in lockstep. */
  seed: number;
  /**
   * Round-robin only: the Int32 word of the shared table (an index into `table.words`; a pool's is
   * poolCell(P.RR_CURSOR, index)) that holds its rotation cursor. Default H.RR_CURSOR. Pools that
   * share a word interleave on it and can starve members, so each pool has its own.
   */
  cursorWord?: number;
}

/** A pool's policy options, from its resolved settings (HTTP and L4 pools build them alike). */
export function policyOptions(
  settings: Pick<PolicyOptions, 'panicThresholdPercent' | 'leastRequestBias' | 'ewmaDecayMs' | 'ewmaDefaultRttMs' | 'slowStartMs' | 'maglevTableSize'>,
  seed: number,
  cursorWord: number,
): PolicyOptions {
  return {
    panicThresholdPercent: settings.panicThresholdPercent,
    leastRequestBias: settings.leastRequestBias,
    ewmaDecayMs: settings.ewmaDecayMs,
    ewmaDefaultRttMs: settings.ewmaDefaultRttMs,
    slowStartMs: settings.slowStartMs,
    maglevTableSize: settings.maglevTableSize,
    seed,
    cursorWord,
  };
}

export interface Policy {
  /** A slot from the pool, or -1 when no member can take the request. */
  pick(ctx: PickContext): number;
}

export type PolicyFactory = (table: SharedTable, members: readonly Member[], options: PolicyOptions) => Policy;
