// The one map of the SharedArrayBuffer that every thread shares.
//
// Struct of arrays: each column is an Int32Array region of CAPACITY slots, one slot per backend.
// Only numbers cross threads this way; names, URLs and pool membership travel once per change over
// MessagePorts. Every cross-thread read or write of a column goes through Atomics (see table.ts).
//
// Regions, in buffer order: header words (H) | backend columns (C × CAPACITY) | per-worker in-flight
// (MAX_WORKERS × CAPACITY) | pool words (P × MAX_POOLS) | route hit counters (MAX_ROUTES) |
// WebSocket close counters (WS_CLOSERS × (WS_CLOSE_CODES + 1)) | edge: route in-flight (MAX_ROUTES) |
// edge counters (E × MAX_ROUTES) | rate-limit buckets (RATE_ENTRIES × R). The edge regions are
// described with their constants below.
//
// Pools: one table holds every pool. A backend is one (pool, upstream) pair with a slot of its own,
// so the same address in two pools has two independent health, load and EWMA states, as two pools
// are two services. The control plane gives each pool a stable index (pool words) and assigns its
// backends slots in declaration order, so at start a pool's backends are one contiguous slot range;
// a backend added by a reload takes the next free slot (slots are never reused for another backend).
//
// Ownership (who writes what):
//   workers      IN_FLIGHT, WORKER_IN_FLIGHT, OPEN_CONNS, WS_*, EWMA_*, LB_*, PROBE_AT, CONSEC_*,
//                counters                                                              (Atomics.add/sub/CAS)
//   control plane HEALTH, ADMIN, WEIGHT, EJECTED_UNTIL, EJECTIONS, SLOW_START_AT, SLOT_GEN (Atomics.store)
//   outlier detection in a worker may set EJECTED_UNTIL with compareExchange (first writer wins).
//   the control plane retires stale time stamps to 0 with compareExchange (see "Time" below).

import { CAPACITY, MAX_POOLS, MAX_ROUTES, MAX_WORKERS } from '../model/limits.js';

// The sizes (backend slots, workers, pools, routes) are the process's limits, which configuration
// checks too: they live in src/model/limits.ts and are re-exported here with the map they size.
export { CAPACITY, MAX_POOLS, MAX_ROUTES, MAX_SERVING_WORKERS, MAX_WORKERS } from '../model/limits.js';

/** Header words (Int32 index into the header region). */
export const H = {
  /** Bumped by the control plane after every membership change (seqlock-style publish). */
  GENERATION: 0,
  /** Highest slot index in use + 1. */
  SLOTS_USED: 1,
  /** Shared round-robin cursor of the unpooled case (pools use P.RR_CURSOR). */
  RR_CURSOR: 2,
  /** Unused (was a client connection gauge uWS cannot feed). */
  UNUSED_3: 3,
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
  /** Proxied WebSockets open to this backend, all workers (each also counts in OPEN_CONNS). */
  WS_OPEN: 24,
  /** WebSocket messages relayed client → backend (UP) and backend → client (DOWN). */
  WS_MSGS_UP: 25,
  WS_MSGS_DOWN: 26,
  /**
   * WebSocket payload bytes each way, 64-bit as two words: LO wraps as an unsigned 32-bit count and
   * the one add that carries it past 2^32 adds 1 to HI (see wsBytes in table.ts).
   */
  WS_BYTES_UP_LO: 27,
  WS_BYTES_UP_HI: 28,
  WS_BYTES_DOWN_LO: 29,
  WS_BYTES_DOWN_HI: 30,
  /**
   * Latency per backend for peak-ewma.ts (service-time.ts writes it), microseconds: a peak EWMA with
   * no decay on read; 0 = no sample yet.
   */
  LB_LATENCY_US: 31,
  /** In-flight count the LB_LATENCY_US samples were taken at, an EWMA × 1000 (fixed point). */
  LB_CONCURRENCY: 32,
  /** Time of the last LB_* sample (a time stamp); 0 = long ago. */
  LB_STAMP: 33,
  /** When a probe was last sent to this backend (a time stamp), shared by all workers; 0 = never. */
  PROBE_AT: 34,
} as const;
export const COLUMNS = 35;

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

/** Words per pool (MAX_POOLS pools). */
export const POOL_WORDS = 4;
/** Pool word ids. */
export const P = {
  /** The pool's round-robin cursor (one Atomics.add per pick keeps rotation exact across workers). */
  RR_CURSOR: 0,
} as const;

/**
 * WebSocket close counters, one word per (who closed, code): not per backend, because a close code
 * is a property of the conversation, and a per-slot table of codes would be mostly zeros.
 * `WS_CLOSE_CODES` are the codes counted by name; every other code counts under the last word.
 */
export const WS_CLOSE_CODES: readonly number[] = [1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011, 1013, 1014];
/** Who ended a proxied WebSocket: the client, the backend, or Sluice itself (limits, drain, failure). */
export const WS_CLOSERS = ['client', 'backend', 'sluice'] as const;
const WS_CLOSE_WORDS = (WS_CLOSE_CODES.length + 1) * WS_CLOSERS.length;

// Edge policy (src/edge). Workers own all three regions (Atomics.add/sub, compareExchange).
//
// Route in-flight: one word per route index, requests of that route in flight in every worker
// (max_in_flight adds, compares, and backs out with sub). Never zeroed: every add is matched by one
// sub of the same word when the request ends, whatever reloads happen in between.
//
// Edge counters: E words per route index, one Atomics.add per event, read by metrics. Counted per
// route and key kind, never per key value (a client could otherwise grow the label set).
//
// Rate-limit buckets: a fixed-size open-addressing table of GCRA states shared by every worker, so
// a limit is exact across threads. An entry is R words:
//   KEY     first hash of (limit, key value); 0 = empty, 1 = being rewritten
//   CHECK   second, independent hash of the same (a match needs both: a false match is ~2^-64);
//           its low bit is the entry's unit (1 = ms, 0 = µs)
//   TAT     GCRA theoretical arrival time, low 32 bits in the limit's unit (µs, or ms for slow
//           limits: rate-table.ts), compared with serial arithmetic like the time stamps above;
//           every worker's sweep keeps it within a few minutes behind now, so it never wraps
//   EXPIRES table seconds when the bucket is full again: only used to pick what to evict
// A key lives in one of the RATE_PROBE entries of its window; lookups scan the window without any
// lock, and the GCRA step is a compareExchange loop on TAT. Only claiming an entry for a new key
// takes the window's claim word (one per window, after the entries), so two threads seeing the
// same new key at once cannot give it two entries; a claim publishes KEY last.
/** Rate-limit entries: 64 Ki keys (1 MiB). Beyond that, the least useful (soonest full) entry of a window is evicted. */
export const RATE_ENTRIES = 65536;
/** Words per rate-limit entry. */
export const RATE_WORDS = 4;
/** Entries a key may occupy from its home index (one cache line pair: 8 × 16 B). */
export const RATE_PROBE = 8;
export const R = { KEY: 0, CHECK: 1, TAT: 2, EXPIRES: 3 } as const;
/** Edge counter words per route. */
export const EDGE_WORDS = 16;
/** Edge counter ids (E); LIMITED_BY + key kind index (rate-table.ts KEY_KINDS). */
export const E = {
  LIMITED_CLIENT_IP: 0,
  LIMITED_HEADER: 1,
  LIMITED_JWT: 2,
  LIMITED_ROUTE: 3,
  IP_DENIED: 4,
  UNAUTHORIZED: 5,
  FORBIDDEN: 6,
  OVERLOADED: 7,
  REDIS_FALLBACK: 8,
  REDIS_CLOSED: 9,
  CORS_PREFLIGHT: 10,
  CORS_REFUSED: 11,
  AUTH_UNAVAILABLE: 12,
} as const;

const COLUMN_WORDS = COLUMNS * CAPACITY;
const WORKER_WORDS = MAX_WORKERS * CAPACITY;
const POOL_REGION = HEADER_WORDS + COLUMN_WORDS + WORKER_WORDS;
const ROUTE_REGION = POOL_REGION + MAX_POOLS * POOL_WORDS;
const WS_CLOSE_REGION = ROUTE_REGION + MAX_ROUTES;
const ROUTE_IN_FLIGHT_REGION = WS_CLOSE_REGION + WS_CLOSE_WORDS;
const EDGE_REGION = ROUTE_IN_FLIGHT_REGION + MAX_ROUTES;
const RATE_REGION = EDGE_REGION + MAX_ROUTES * EDGE_WORDS;
const RATE_CLAIM_REGION = RATE_REGION + RATE_ENTRIES * RATE_WORDS;
export const TOTAL_WORDS = RATE_CLAIM_REGION + RATE_ENTRIES / RATE_PROBE;
export const BYTES = TOTAL_WORDS * Int32Array.BYTES_PER_ELEMENT;

/** Word index of a pool's word (P). */
export function poolCell(field: number, pool: number): number {
  return POOL_REGION + pool * POOL_WORDS + field;
}

/**
 * Word index of a route's hit counter, by its index in the route table (workers add; the control
 * plane zeroes the region when a reload changes the routes, so a count belongs to one table).
 */
export function routeCell(route: number): number {
  return ROUTE_REGION + route;
}

/** Word index of the close counter for `closer` (index in WS_CLOSERS) and close `code`. */
export function wsCloseCell(closer: number, code: number): number {
  const i = WS_CLOSE_CODES.indexOf(code);
  return WS_CLOSE_REGION + closer * (WS_CLOSE_CODES.length + 1) + (i < 0 ? WS_CLOSE_CODES.length : i);
}

/** Word index of (column, slot). */
export function cell(column: number, slot: number): number {
  return HEADER_WORDS + column * CAPACITY + slot;
}

/** Word index of a worker's own in-flight count for a slot. */
export function workerCell(worker: number, slot: number): number {
  return HEADER_WORDS + COLUMN_WORDS + worker * CAPACITY + slot;
}

/** Word index of a route's in-flight count (max_in_flight). */
export function routeInFlightCell(route: number): number {
  return ROUTE_IN_FLIGHT_REGION + route;
}

/** Word index of a route's edge counter (E). */
export function edgeCell(route: number, counter: number): number {
  return EDGE_REGION + route * EDGE_WORDS + counter;
}

/** Word index of the claim word of the window holding rate-limit entry `entry` (0 free, 1 held). */
export function rateClaimCell(entry: number): number {
  return RATE_CLAIM_REGION + ((entry / RATE_PROBE) | 0);
}

/** Word index of word `field` (R) of rate-limit entry `entry`. */
export function rateCell(entry: number, field: number): number {
  return RATE_REGION + entry * RATE_WORDS + field;
}
