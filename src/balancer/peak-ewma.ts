// Peak EWMA with power of two choices, queueing counted once: the default policy (SLUICE_BALANCER=peak-ewma).
//
//   cost = max(latency, service × (in flight + 1)) / weight,    service = latency ÷ concurrency
//
// `latency` is the backend's recent latency (an EWMA that rises faster than it falls: a softened
// peak EWMA) and `concurrency` the in-flight count it usually answers at (service-time.ts), so `service` is its time per request with the queueing divided
// out. A new request waits at least the latency the backend answers at, and at least the requests
// ahead of it (itself included) times the service time each: the max of the two is the predicted
// latency. At the load it was measured at that is the latency itself; with more in flight it grows
// like a queue; with fewer it does not shrink below it (a backend whose latency is a fixed delay
// would not get faster). The classic rule (peak-ewma-classic.ts, Linkerd/Finagle) multiplies a
// latency that already contains the queue by the queue again: a fast backend answering in 3 ms at 10
// in flight costs 33 there, nearly as much as an idle one answering in 40 ms, so the slow one keeps
// a share and sits in p99. Here they cost 3 and 40. docs/balancing.md has the measurements.
//
// Two distinct candidates are drawn at random. When their costs are within TIE_BAND of each other
// they are alike, and the one with fewer requests in flight (per weight) wins (equal loads: the
// first draw): Envoy's least-request P2C, over the shared in-flight counts of all workers.
// Otherwise the cheaper wins. The band is Prequal's hot/cold idea (rank by load where latency says
// nothing): equally slow backends each cost their latency at the load they have seen, whatever
// their share, so by cost alone their shares would drift (herding). (Banding on latency instead,
// so that a recovered backend is let back by load alone, was tried: in the simulation with stalls
// it let one backend's stall-inflated estimate steer traffic and raised the all-fast p99 by 45%.)
//
// Probing. The estimate is not decayed on read: a shunned backend would otherwise drift back into
// contention by time alone and take real traffic to learn it is still slow. Instead a drawn backend
// with no sample, or whose last sample is older than PROBE_INTERVAL_MS, may take this request as a
// probe when: nothing is in flight to it (one probe at a time), the shared PROBE_AT stamp allows it
// (at most one probe per PROBE_INTERVAL_MS per backend across all workers, won by compareExchange),
// and this worker has a probe token (PROBE_SHARE of its picks, so under light traffic probes stay a
// small share too). A backend with no sample at all needs no token: a new or recovered backend is
// measured at once. A backend in regular use is never stale, so never probed.
//
// Dividing by the live weight (× slow-start factor) is HAProxy leastconn's normalisation
// (lb_fwlc.c). O(1) per pick; allocates nothing.

import { C, ageOf, cell, toStamp } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';
import { Candidates } from './candidates.js';
import type { Member, PickContext, Policy, PolicyFactory, PolicyOptions } from './policy.js';
import { Rng } from './rng.js';
import { concurrency, latencyUs, sampleAge } from './service-time.js';

/**
 * At most one probe per backend per this many ms, all workers together. A probe of a 40 ms backend
 * holds a client for 40 ms, so what matters for p99 is its share of client time, not of requests
 * (wrk's corrected percentiles and any client with a fixed request rate weigh it that way): 2
 * probes/s over 32 busy connections is 2 × 40 ms / 32 s = 0.25% of it, well under the 1% that
 * would reach p99. With SERVICE_DECAY_MS = 250 each fast probe of a recovered backend moves its
 * estimate 86% of the way down, so it is back in contention after 2–3 probes, 1–1.5 s.
 */
export const PROBE_INTERVAL_MS = 500;
/** Share of this worker's picks that may be probes: bounds probing when traffic is light. */
export const PROBE_SHARE = 0.01;
/** Probe tokens a worker may bank (a quiet spell must not fund a burst of probes). */
const PROBE_TOKEN_CAP = 2;
/**
 * Costs within this factor of each other are alike, and the pick goes by in-flight. Estimates of
 * equally fast backends differ by this much from sampling noise and from the load each carries; a
 * slow backend worth avoiding differs by far more (the is 10–40× its peers).
 */
export const TIE_BAND = 1.25;

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
    const table = this.#table;
    const wa = c.weights[a]!;
    const wb = c.weights[b]!;
    const ca = this.cost(slotA, wa);
    const cb = this.cost(slotB, wb);
    if (ca <= cb * TIE_BAND && cb <= ca * TIE_BAND) {
      // Alike: the costs say nothing, the loads do. Equal loads: the first draw (itself random).
      return table.inFlight(slotB) / wb < table.inFlight(slotA) / wa ? slotB : slotA;
    }
    return cb < ca ? slotB : slotA;
  }

  /** Predicted latency of the next request to `slot` (µs), divided by its effective `weight`. */
  cost(slot: number, weight: number): number {
    const table = this.#table;
    const latency = latencyUs(table, slot);
    if (latency === 0) return (this.#defaultUs * (table.inFlight(slot) + 1)) / weight;
    const queued = (latency / concurrency(table, slot)) * (table.inFlight(slot) + 1);
    return (queued > latency ? queued : latency) / weight;
  }

  /** Whether this request should be the probe of `slot` (and if so, claim the shared probe stamp). */
  #probe(slot: number, now: number): boolean {
    const table = this.#table;
    if (table.inFlight(slot) !== 0) return false;
    const unsampled = latencyUs(table, slot) === 0;
    if (!unsampled && (this.#tokens < 1 || sampleAge(table, slot, now) < PROBE_INTERVAL_MS)) return false;
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
