// Round robin: each candidate in turn, ignoring weights (weighted-round-robin.ts honours them).
//
// The cursor is one word of the shared table, advanced with Atomics.add, so the rotation is exact
// across all workers (Pingora's round robin is the same single fetch_add): with 4 workers and 4
// backends, 4 consecutive requests reach 4 different backends whichever workers accept them.
// Which word is PolicyOptions.cursorWord (default H.RR_CURSOR); it is an option rather than a
// fixed header word because once there are several pools each needs its own cursor: pools sharing
// one interleave, and a pool of 2 that always follows another pool's pick would only ever see even
// cursor values and send everything to one backend.
//
// Slow start: a ramping backend takes its turn with probability equal to its slow-start factor;
// otherwise the turn passes to the next candidate.

import { H, TOTAL_WORDS } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';
import { Candidates } from './candidates.js';
import type { Member, PickContext, Policy, PolicyFactory, PolicyOptions } from './policy.js';
import { Rng } from './rng.js';

export class RoundRobin implements Policy {
  readonly #words: Int32Array;
  readonly #cursor: number;
  readonly #candidates: Candidates;
  readonly #rng: Rng;

  constructor(table: SharedTable, members: readonly Member[], options: PolicyOptions) {
    const cursor = options.cursorWord ?? H.RR_CURSOR;
    if (!Number.isInteger(cursor) || cursor < 0 || cursor >= TOTAL_WORDS) {
      throw new RangeError(`round-robin cursorWord ${cursor} must be a word of the table (0..${TOTAL_WORDS - 1})`);
    }
    this.#words = table.words;
    this.#cursor = cursor;
    this.#candidates = new Candidates(table, members, options);
    this.#rng = new Rng(options.seed);
  }

  pick(ctx: PickContext): number {
    const c = this.#candidates;
    const n = c.refresh(ctx.now, ctx.exclude);
    if (n === 0) return -1;
    // Unsigned so the rotation survives the Int32 wrap (one uneven step every 2^32 picks).
    const turn = (Atomics.add(this.#words, this.#cursor, 1) >>> 0) % n;
    if (!c.ramping) return c.slots[turn]!;
    for (let step = 0, i = turn; step < n; step++, i = i + 1 === n ? 0 : i + 1) {
      const ramp = c.ramps[i]!;
      if (ramp >= 1 || this.#rng.float() < ramp) return c.slots[i]!;
    }
    return c.slots[turn]!;
  }
}

export const roundRobin: PolicyFactory = (table, members, options) => new RoundRobin(table, members, options);
