// Least request (Envoy's LEAST_REQUEST load balancer), over the shared in-flight counts, so every
// worker sees every other worker's requests.
//
// Equal weights: power of two choices (Mitzenmacher, "The Power of Two Choices in Randomized Load
// Balancing", 2001): draw two distinct candidates at random, send to the one with fewer requests in
// flight (ties go to the first draw, itself random). O(1) per pick, and it avoids the herd effect of
// "always the global least", where every worker piles onto the same backend between updates.
//
// Unequal weights (including a backend in slow start): Envoy's dynamic weights
//   effective = weight / (in_flight + 1)^bias          (bias = PolicyOptions.leastRequestBias)
// and a weighted random pick over them (Envoy runs EDF over the same weights). bias 0 is plain
// weighted random; bias 1 makes the share fall as 1/(in flight + 1); higher is more aggressive.
// At zero load the shares are exactly the weights. Under sustained load in-flight grows with each
// backend's own traffic, so with bias 1 equally fast backends settle near √weight shares, not
// weight shares (share ∝ w / share); bias 0 keeps exact weights, at the cost of ignoring load.
// That is Envoy's trade-off too; the test shows both. O(candidates) per pick.

import type { SharedTable } from '../state/table.js';
import { Candidates } from './candidates.js';
import type { Member, PickContext, Policy, PolicyFactory, PolicyOptions } from './policy.js';
import { Rng } from './rng.js';

export class LeastRequest implements Policy {
  readonly #table: SharedTable;
  readonly #candidates: Candidates;
  readonly #rng: Rng;
  readonly #bias: number;
  /** Dynamic weights of the current pick (running sums). */
  readonly #scratch: Float64Array;

  constructor(table: SharedTable, members: readonly Member[], options: PolicyOptions) {
    this.#table = table;
    this.#candidates = new Candidates(table, members, options);
    this.#rng = new Rng(options.seed);
    this.#bias = options.leastRequestBias;
    this.#scratch = new Float64Array(members.length);
  }

  pick(ctx: PickContext): number {
    const c = this.#candidates;
    const n = c.refresh(ctx.now, ctx.exclude);
    if (n === 0) return -1;
    if (n === 1) return c.slots[0]!;
    const table = this.#table;
    const rng = this.#rng;

    if (c.uniform) {
      const a = rng.below(n);
      let b = rng.below(n - 1);
      if (b >= a) b++;
      const slotA = c.slots[a]!;
      const slotB = c.slots[b]!;
      return table.inFlight(slotB) < table.inFlight(slotA) ? slotB : slotA;
    }

    const sums = this.#scratch;
    const bias = this.#bias;
    let total = 0;
    for (let k = 0; k < n; k++) {
      const load = table.inFlight(c.slots[k]!) + 1;
      // bias 1 (the default) and 0 are the common cases: skip Math.pow for them.
      const divisor = bias === 1 ? load : bias === 0 ? 1 : Math.pow(load, bias);
      total += c.weights[k]! / divisor;
      sums[k] = total;
    }
    const target = rng.float() * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sums[mid]! > target) hi = mid;
      else lo = mid + 1;
    }
    return c.slots[lo]!;
  }
}

export const leastRequest: PolicyFactory = (table, members, options) => new LeastRequest(table, members, options);
