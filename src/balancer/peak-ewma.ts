// Peak EWMA of service time with power of two choices: the default policy (SLUICE_BALANCER=peak-ewma).
//
//   cost = service time × (in flight + 1) / weight
//
// Service time is service-time.ts's estimate: latency divided by the in-flight count it was
// observed at, as a peak EWMA. So the cost is the latency a new request would see there if latency
// grows with the queue, and it counts the queue once. The classic rule (peak-ewma-classic.ts,
// Linkerd/Finagle) multiplies a latency that already contains the queue by the queue again: a fast
// backend answering in 3 ms at 10 in flight costs 33 there, more than an idle backend answering in
// 30 ms, so the slow one keeps a share and sits in p99. Here the fast one costs ~3.3 and the idle
// slow one 30. docs/balancing.md has the measurements.
//
// Two distinct candidates are drawn at random; the cheaper wins (ties: the first draw). In-flight is
// the shared count across workers, so P2C over it spreads equally slow backends without herding.
//
// Probing. The estimate is not decayed on read: a shunned backend would otherwise drift back into
// contention by time alone and take real traffic to find out it is still slow. Instead a drawn
// backend with no sample, or whose last sample is older than PROBE_INTERVAL_MS, may take this
// request as a probe when: nothing is in flight to it (one probe at a time), the shared PROBE_AT
// stamp allows it (at most one probe per PROBE_INTERVAL_MS per backend across all workers, won by
// compareExchange), and this worker has a probe token (PROBE_SHARE of its picks, so at low traffic
// probes stay a small share too). A backend with no sample at all skips the token: a new or
// recovered backend is measured at once. A backend in regular use is never stale, never probed.
//
// Dividing by the live weight (× slow-start factor) is HAProxy leastconn's normalisation
// (lb_fwlc.c). O(1) per pick; allocates nothing.

import { C, ageOf, cell, toStamp } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';
import { Candidates } from './candidates.js';
import type { Member, PickContext, Policy, PolicyFactory, PolicyOptions } from './policy.js';
import { Rng } from './rng.js';
import { serviceAge, serviceUs } from './service-time.js';

/**
 * At most one probe per backend per this many ms, all workers together: ≤ 5 probes/s to a shunned
 * backend, 0.05% of 10k req/s, far below the 1% that would reach p99; and frequent enough that a
 * recovered backend is re-measured within a couple of seconds (SERVICE_DECAY_MS explains the pace).
 */
export const PROBE_INTERVAL_MS = 200;
/** Share of this worker's picks that may be probes: bounds probing when traffic is light. */
export const PROBE_SHARE = 0.01;
/** Probe tokens a worker may bank (a quiet spell must not fund a burst of probes). */
const PROBE_TOKEN_CAP = 2;

export class PeakEwma implements Policy {
  readonly #table: SharedTable;
  readonly #candidates: Candidates;
  readonly #rng: Rng;
  readonly #defaultUs: number;
  readonly #probeBase: number;
  #tokens = 1;

  constructor(table: SharedTable, members: readonly Member[], options: PolicyOptions) {
    this.#table = table;
    this.#candidates = new Candidates(table, members, options);
    this.#rng = new Rng(options.seed);
    this.#defaultUs = options.ewmaDefaultRttMs * 1000;
    this.#probeBase = cell(C.PROBE_AT, 0);
  }

  pick(ctx: PickContext): number {
    const c = this.#candidates;
    const n = c.refresh(ctx.now, ctx.exclude);
    if (n === 0) return -1;
    if (n === 1) return c.slots[0]!;
    if (this.#tokens < PROBE_TOKEN_CAP) this.#tokens += PROBE_SHARE;
    const rng = this.#rng;
    const a = rng.below(n);
    let b = rng.below(n - 1);
    if (b >= a) b++;
    const slotA = c.slots[a]!;
    const slotB = c.slots[b]!;
    const now = ctx.now;
    if (this.#probe(slotA, now)) return slotA;
    if (this.#probe(slotB, now)) return slotB;
    return this.cost(slotB, c.weights[b]!) < this.cost(slotA, c.weights[a]!) ? slotB : slotA;
  }

  /** The cost of sending the next request to `slot` with effective weight `weight` (µs per weight unit). */
  cost(slot: number, weight: number): number {
    const s = serviceUs(this.#table, slot);
    return ((s > 0 ? s : this.#defaultUs) * (this.#table.inFlight(slot) + 1)) / weight;
  }

  /** Whether this request should be the probe of `slot` (and if so, claim the shared probe stamp). */
  #probe(slot: number, now: number): boolean {
    const table = this.#table;
    if (table.inFlight(slot) !== 0) return false;
    const unsampled = serviceUs(table, slot) === 0;
    if (!unsampled && (this.#tokens < 1 || serviceAge(table, slot, now) < PROBE_INTERVAL_MS)) return false;
    const words = table.words;
    const i = this.#probeBase + slot;
    const last = Atomics.load(words, i);
    if (!unsampled && ageOf(last, now) < PROBE_INTERVAL_MS) return false;
    if (Atomics.compareExchange(words, i, last, toStamp(now)) !== last) return false; // another worker's probe
    if (!unsampled) this.#tokens -= 1;
    return true;
  }
}

export const peakEwma: PolicyFactory = (table, members, options) => new PeakEwma(table, members, options);
