// Classic peak EWMA with power of two choices (Linkerd2 / Finagle "P2C + peak EWMA"), exactly as
// Linkerd does it: SLUICE_BALANCER=peak-ewma-classic. The default `peak-ewma` (peak-ewma.ts) divides
// the queueing out of the latency first; docs/balancing.md says why and compares them.
//
//   cost = latency estimate × (in flight + 1) / weight
//
// The latency estimate is ewma.ts's peak EWMA, decayed to `now` on read; in-flight is the shared
// count across workers. Two distinct candidates are drawn at random and the cheaper one wins (ties:
// the first draw). Latency × queue length is roughly the time a new request would wait there, so a
// backend that slows down loses traffic within a request or two, and one that sits idle decays back
// into contention and is re-probed; a backend that spiked and recovered is back to its full share
// after a few τ (ewmaDecayMs), since lower samples blend in by time.
//
// A backend with no sample yet costs ewmaDefaultRttMs, decaying like a sample taken at this policy's
// first pick (Linkerd seeds a new endpoint's estimate with the default RTT at creation and decays it
// the same way): with a default above the real latencies, an unprobed backend still enters
// contention after about τ·ln(default / typical) instead of never.
//
// Dividing by the live weight (× slow-start factor) is the normalisation HAProxy's leastconn uses
// (lb_fwlc.c); with equal weights it is exactly Linkerd's cost. O(1) per pick.

import type { SharedTable } from '../state/table.js';
import { Candidates } from './candidates.js';
import { currentEwmaUs } from './ewma.js';
import type { Member, PickContext, Policy, PolicyFactory, PolicyOptions } from './policy.js';
import { Rng } from './rng.js';

export class PeakEwmaClassic implements Policy {
  readonly #table: SharedTable;
  readonly #candidates: Candidates;
  readonly #rng: Rng;
  readonly #decayMs: number;
  readonly #defaultUs: number;
  /** Table time of the first pick: the default RTT of unsampled backends decays from here. */
  #born = Number.NaN;

  constructor(table: SharedTable, members: readonly Member[], options: PolicyOptions) {
    this.#table = table;
    this.#candidates = new Candidates(table, members, options);
    this.#rng = new Rng(options.seed);
    this.#decayMs = options.ewmaDecayMs;
    this.#defaultUs = options.ewmaDefaultRttMs * 1000;
  }

  pick(ctx: PickContext): number {
    const c = this.#candidates;
    const n = c.refresh(ctx.now, ctx.exclude);
    if (n === 0) return -1;
    if (n === 1) return c.slots[0]!;
    if (Number.isNaN(this.#born)) this.#born = ctx.now;
    const rng = this.#rng;
    const a = rng.below(n);
    let b = rng.below(n - 1);
    if (b >= a) b++;
    // Probe: a drawn backend with no sample and nothing in flight takes this request, so a new,
    // re-enabled or recovered backend is measured at once instead of waiting for the default RTT
    // to decay below its peers' real latency (tens of seconds under light load). One probe at a
    // time: while it is in flight the default-RTT cost below applies.
    if (this.#unprobed(a)) return c.slots[a]!;
    if (this.#unprobed(b)) return c.slots[b]!;
    return this.#cost(b, ctx.now) < this.#cost(a, ctx.now) ? c.slots[b]! : c.slots[a]!;
  }

  #unprobed(k: number): boolean {
    const slot = this.#candidates.slots[k]!;
    return this.#table.ewmaUs(slot) === 0 && this.#table.inFlight(slot) === 0;
  }

  #cost(k: number, now: number): number {
    const c = this.#candidates;
    const slot = c.slots[k]!;
    const table = this.#table;
    const age = now - this.#born;
    const fallback = age > 0 && this.#decayMs > 0 ? this.#defaultUs * Math.exp(-age / this.#decayMs) : this.#defaultUs;
    const latency = currentEwmaUs(table, slot, now, this.#decayMs, fallback);
    return (latency * (table.inFlight(slot) + 1)) / c.weights[k]!;
  }
}

export const peakEwmaClassic: PolicyFactory = (table, members, options) => new PeakEwmaClassic(table, members, options);
