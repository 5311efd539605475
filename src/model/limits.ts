// How much one Sluice process holds: backends, worker threads, pools and routes. Configuration
// validates against these and the shared table (src/state/layout.ts) is sized by them; they live
// here, on the ground floor, so that config does not import the shared table to learn them.

/** Backend slots in one table. Fixed so the buffer never moves; 1024 × 4 B × ~24 columns ≈ 100 KiB. */
export const CAPACITY = 1024;
/**
 * Worker threads whose per-worker in-flight counts are tracked (crash recovery needs them): up to
 * 64 serving workers plus the supervisor's warm spare.
 */
export const MAX_WORKERS = 65;
/** Serving workers (SLUICE_WORKERS at most). */
export const MAX_SERVING_WORKERS = MAX_WORKERS - 1;
/** Pools the table can index. */
export const MAX_POOLS = 256;
/** Routes whose hits are counted (a route past this index is served but not counted). */
export const MAX_ROUTES = 4096;
