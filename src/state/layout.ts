// The one map of the SharedArrayBuffer that every thread shares.
//
// Struct of arrays: each column is an Int32Array region of CAPACITY slots, one slot per backend.
// Only numbers cross threads this way; names, URLs and pool membership travel once per change over
// MessagePorts. Every cross-thread read or write of a column goes through Atomics (see table.ts).
//
// Ownership (who writes what):
//   workers      IN_FLIGHT, WORKER_IN_FLIGHT, OPEN_CONNS, EWMA_*, LB_*, PROBE_AT, CONSEC_*,
//                counters                                                              (Atomics.add/sub/CAS)
//   control plane HEALTH, ADMIN, WEIGHT, EJECTED_UNTIL, EJECTIONS, SLOW_START_AT, SLOT_GEN (Atomics.store)
//   outlier detection in a worker may set EJECTED_UNTIL with compareExchange (first writer wins).
//   the control plane retires stale time stamps to 0 with compareExchange (see "Time" below).

/** Backend slots in one table. Fixed so the buffer never moves; 1024 × 4 B × ~24 columns ≈ 100 KiB. */
export const CAPACITY = 1024;
/**
 * Worker threads whose per-worker in-flight counts are tracked (crash recovery needs them): up to
 * 64 serving workers plus the supervisor's warm spare.
 */
export const MAX_WORKERS = 65;
/** Serving workers (SLUICE_WORKERS at most). */
export const MAX_SERVING_WORKERS = MAX_WORKERS - 1;

/** Header words (Int32 index into the header region). */
export const H = {
  /** Bumped by the control plane after every membership change (seqlock-style publish). */
  GENERATION: 0,
  /** Highest slot index in use + 1. */
  SLOTS_USED: 1,
  /** Shared round-robin cursor (one Atomics.add per pick keeps rotation exact across workers). */
  RR_CURSOR: 2,
  /** Client connections currently open, all workers. */
  CLIENT_CONNS: 3,
  /** Worker restarts since start. */
  WORKER_RESTARTS: 4,
  /** Table epoch, unix ms, split in two words (Int32 cannot hold it): table time is ms since it. */
  EPOCH_HI: 5,
  EPOCH_LO: 6,
} as const;
export const HEADER_WORDS = 16;

/** Column ids, in buffer order. Values per slot, all Int32. */
export const C = {
  /** Health as seen by active checks / outlier detection: see Health. */
  HEALTH: 0,
  /** Operator state: see Admin. */
  ADMIN: 1,
  /** Configured weight × WEIGHT_SCALE (integer so weights like 0.5 survive). 0 = no traffic. */
  WEIGHT: 2,
  /** Requests in flight to this backend, all workers. */
  IN_FLIGHT: 3,
  /** Open upstream connections (L4 and pooled HTTP), all workers. */
  OPEN_CONNS: 4,
  /** Peak-EWMA latency in microseconds. */
  EWMA_US: 5,
  /** Time of the last EWMA update (a time stamp, see "Time" below); 0 = long ago. */
  EWMA_STAMP: 6,
  /** Consecutive 5xx responses (passive outlier detection). */
  CONSEC_5XX: 7,
  /** Consecutive connect failures / resets. */
  CONSEC_FAIL: 8,
  /** Ejected until this time (a time stamp); 0 = never ejected, or so long ago it no longer matters. */
  EJECTED_UNTIL: 9,
  /** How many times this backend has been ejected (drives the growing back-off). */
  EJECTIONS: 10,
  /** When slow start began for this backend (a time stamp); 0 = none. */
  SLOW_START_AT: 11,
  /** Membership generation of the slot; changes when the slot is reassigned. */
  SLOT_GEN: 12,
  /** Counters for metrics. */
  REQUESTS: 13,
  RESP_1XX: 14,
  RESP_2XX: 15,
  RESP_3XX: 16,
  RESP_4XX: 17,
  RESP_5XX: 18,
  ERR_CONNECT: 19,
  ERR_TIMEOUT: 20,
  ERR_RESET: 21,
  ERR_PROTOCOL: 22,
  RETRIES: 23,
  /**
   * Latency per backend for peak-ewma.ts (service-time.ts writes it), microseconds: a peak EWMA with
   * no decay on read; 0 = no sample yet.
   */
  LB_LATENCY_US: 24,
  /** In-flight count the LB_LATENCY_US samples were taken at, an EWMA × 1000 (fixed point). */
  LB_CONCURRENCY: 25,
  /** Time of the last LB_* sample (a time stamp); 0 = long ago. */
  LB_STAMP: 26,
  /** When a probe was last sent to this backend (a time stamp), shared by all workers; 0 = never. */
  PROBE_AT: 27,
} as const;
export const COLUMNS = 28;

export const WEIGHT_SCALE = 100;

// Time.
//
// Table time (SharedTable.now()) is a plain number: ms since the table epoch, exact for millennia.
// A time column holds only its low 32 bits, a *time stamp* (toStamp), and is read back relative to
// now with serial-number arithmetic (RFC 1982): ageOf(stamp, now) = (now - stamp) | 0, which is
// exact whenever the true difference is within ±2^31 ms (24.8 days), however long the process has
// run. Why this and not the alternatives: a coarser unit would need ≥ 64 ms ticks to last years,
// too coarse for the EWMA's Δt and for ejections; 64-bit stamps cannot be compareExchanged in one
// Int32 word (EJECTED_UNTIL's first-writer-wins) and BigInt64 loads allocate on the hot path;
// moving the epoch would race every worker writing a time computed against the old one.
//
// The ±24.8-day window holds because every stamp that still means something is near now: every
// duration that gives one meaning (ejection, slow-start window, EWMA decay τ, timeouts) is capped
// at one hour by the configuration (MAX_MS in config/variables.ts). A stamp left alone for longer
// would eventually alias (after 24.8 days it would read as the future), so the control plane
// retires stamps older than STALE_MS to 0 every RETIRE_EVERY_MS (SharedTable.retireStaleTimes): a
// stamp is never older than ~25 hours, far inside the window.
//
// 0 is the sentinel in all the time columns ("none", "never", "long ago"): toStamp never returns
// it (a time whose low bits are 0 is stored 1 ms late), and ageOf(0, now) is Infinity, which every
// reader already treats as "long ago" (ejection over, slow start done, EWMA fully decayed).

/** A stamp older than this is retired to 0: one day, 24× the longest duration any stamp serves. */
export const STALE_MS = 86_400_000;
/** How often the control plane retires stale stamps; STALE_MS + this is far below 2^31 ms. */
export const RETIRE_EVERY_MS = 3_600_000;
/** The columns that hold time stamps. */
export const TIME_COLUMNS: readonly number[] = [C.EWMA_STAMP, C.EJECTED_UNTIL, C.SLOW_START_AT, C.LB_STAMP, C.PROBE_AT];

/** The stamp stored for table time `ms` (an integer): its low 32 bits, never 0. */
export function toStamp(ms: number): number {
  const s = ms | 0;
  return s === 0 ? 1 : s;
}

/**
 * How long before `now` the time stored as `stamp` was (negative: still ahead), in ms. Infinity
 * for 0. Exact while the true difference is within ±2^31 ms, which retirement guarantees.
 */
export function ageOf(stamp: number, now: number): number {
  return stamp === 0 ? Infinity : (now - stamp) | 0;
}

export const Health = { UNKNOWN: 0, HEALTHY: 1, UNHEALTHY: 2 } as const;
export const Admin = { ENABLED: 0, DRAINING: 1, DISABLED: 2 } as const;

const COLUMN_WORDS = COLUMNS * CAPACITY;
const WORKER_WORDS = MAX_WORKERS * CAPACITY;
export const TOTAL_WORDS = HEADER_WORDS + COLUMN_WORDS + WORKER_WORDS;
export const BYTES = TOTAL_WORDS * Int32Array.BYTES_PER_ELEMENT;

/** Word index of (column, slot). */
export function cell(column: number, slot: number): number {
  return HEADER_WORDS + column * CAPACITY + slot;
}

/** Word index of a worker's own in-flight count for a slot. */
export function workerCell(worker: number, slot: number): number {
  return HEADER_WORDS + COLUMN_WORDS + worker * CAPACITY + slot;
}
