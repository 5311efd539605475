// Uniform random over the candidates, ignoring weights (weighted-random.ts honours them). Random
// needs no shared state at all, which makes it the cheapest policy across many workers; its
// imbalance is ~√n per backend over n picks, where least-request and peak EWMA do better.
//
// Slow start by rejection sampling: a ramping backend is kept with probability equal to its
// factor, otherwise we draw again (bounded, so a pool that is all ramping still answers).

import type { SharedTable } from '../state/table.js';
import { Candidates } from './candidates.js';
import type { Member, PickContext, Policy, PolicyFactory, PolicyOptions } from './policy.js';
import { Rng } from './rng.js';

/** Draws before giving up on rejection: at the 10% floor, 8 draws still accept ~57% of the time. */
const MAX_DRAWS = 8;

export class RandomPolicy implements Policy {
  readonly #candidates: Candidates;
  readonly #rng: Rng;

  constructor(table: SharedTable, members: readonly Member[], options: PolicyOptions) {
    this.#candidates = new Candidates(table, members, options);
    this.#rng = new Rng(options.seed);
  }

  pick(ctx: PickContext): number {
    const c = this.#candidates;
    const n = c.refresh(ctx.now, ctx.exclude);
    if (n === 0) return -1;
    const rng = this.#rng;
    let i = rng.below(n);
    if (!c.ramping) return c.slots[i]!;
    for (let draw = 1; draw < MAX_DRAWS; draw++) {
      const ramp = c.ramps[i]!;
      if (ramp >= 1 || rng.float() < ramp) break;
      i = rng.below(n);
    }
    return c.slots[i]!;
  }
}

export const random: PolicyFactory = (table, members, options) => new RandomPolicy(table, members, options);
