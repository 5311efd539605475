// Smooth weighted round robin (nginx, ngx_http_upstream_round_robin.c, "smooth" variant):
//   every pick:  current[i] += weight[i] for each candidate;  choose the largest current;
//                current[chosen] −= Σ weight.
// Over any Σw consecutive picks (integer weights) each backend gets exactly its weight, and the
// picks interleave instead of coming in bursts: {5, 1, 1} gives a a b a c a a, not a a a a a b c.
// Runs stay short: over random weight sets the property test never sees more than ceil(w / w_min)
// picks in a row to one backend.
//
// Weights are live (table WEIGHT × slow-start factor), so admin weight changes and slow start act
// on the next pick. State is per worker: each worker's sequence is smooth on its own, and the sum
// of smooth sequences still respects the weights. O(candidates) per pick, like nginx; fine for
// pools of tens. A backend that leaves keeps its `current` and resumes from it when it returns.

import type { SharedTable } from '../state/table.js';
import { Candidates } from './candidates.js';
import type { Member, PickContext, Policy, PolicyFactory, PolicyOptions } from './policy.js';

export class WeightedRoundRobin implements Policy {
  readonly #candidates: Candidates;
  /** By member index. */
  readonly #current: Float64Array;

  constructor(table: SharedTable, members: readonly Member[], options: PolicyOptions) {
    this.#candidates = new Candidates(table, members, options);
    this.#current = new Float64Array(members.length);
  }

  pick(ctx: PickContext): number {
    const c = this.#candidates;
    const n = c.refresh(ctx.now, ctx.exclude);
    if (n === 0) return -1;
    const current = this.#current;
    let best = 0;
    let bestValue = -Infinity;
    for (let k = 0; k < n; k++) {
      const m = c.member[k]!;
      const value = current[m]! + c.weights[k]!;
      current[m] = value;
      if (value > bestValue) {
        bestValue = value;
        best = k;
      }
    }
    current[c.member[best]!] = bestValue - c.total;
    return c.slots[best]!;
  }
}

export const weightedRoundRobin: PolicyFactory = (table, members, options) => new WeightedRoundRobin(table, members, options);
