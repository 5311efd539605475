// Least connections over the shared OPEN_CONNS column (for L4 and long-lived connections), weighted
// as HAProxy's leastconn does (lb_fwlc.c): the backend with the smallest (conns + 1) / weight wins,
// so at rest the open connections settle in proportion to the weights.
//
// A full scan, not power of two choices, on purpose: this runs once per new connection, not per
// request, so O(candidates) for pools of tens of backends is cheap, and because connections live
// long, a poor pick costs for the connection's whole life; the exact minimum is worth the scan.
// The scan starts at a random candidate so ties (an idle pool) spread instead of all landing on the
// first member. Comparisons cross-multiply: no division, no rounding.

import { C, cell } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';
import { Candidates } from './candidates.js';
import type { Member, PickContext, Policy, PolicyFactory, PolicyOptions } from './policy.js';
import { Rng } from './rng.js';

export class LeastConn implements Policy {
  readonly #words: Int32Array;
  readonly #conns: number;
  readonly #candidates: Candidates;
  readonly #rng: Rng;

  constructor(table: SharedTable, members: readonly Member[], options: PolicyOptions) {
    this.#words = table.words;
    this.#conns = cell(C.OPEN_CONNS, 0);
    this.#candidates = new Candidates(table, members, options);
    this.#rng = new Rng(options.seed);
  }

  pick(ctx: PickContext): number {
    const c = this.#candidates;
    const n = c.refresh(ctx.now, ctx.exclude);
    if (n === 0) return -1;
    const words = this.#words;
    const base = this.#conns;
    let best = -1;
    let bestLoad = 0;
    let bestWeight = 1;
    for (let step = 0, k = this.#rng.below(n); step < n; step++, k = k + 1 === n ? 0 : k + 1) {
      const load = Atomics.load(words, base + c.slots[k]!) + 1;
      const weight = c.weights[k]!;
      // load / weight < bestLoad / bestWeight, without dividing.
      if (best < 0 || load * bestWeight < bestLoad * weight) {
        best = k;
        bestLoad = load;
        bestWeight = weight;
      }
    }
    return c.slots[best]!;
  }
}

export const leastConn: PolicyFactory = (table, members, options) => new LeastConn(table, members, options);
