// Per-instance pseudo-random numbers for policies: xorshift32 (Marsaglia, "Xorshift RNGs", 2003,
// shifts 13/17/5, period 2^32 - 1).
//
// Seeded from PolicyOptions.seed rather than Math.random so that (a) a fleet of proxies, and the
// workers of one proxy, do not pick in lockstep when the caller gives each a different seed, and
// (b) tests are repeatable. Balancing needs spread, not unpredictability: never use this for secrets.

import { mix32 } from './hash.js';

const TWO_32 = 4294967296;

export class Rng {
  #state: number;

  constructor(seed: number) {
    // Mix first so nearby seeds (worker 1, 2, 3) start far apart; xorshift must not start at 0.
    const s = mix32((seed ^ 0x9e3779b9) >>> 0);
    this.#state = s === 0 ? 0x6d2b79f5 : s | 0;
  }

  /** Next unsigned 32-bit value. */
  next(): number {
    let x = this.#state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#state = x;
    return x >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.next() / TWO_32;
  }

  /** Uniform integer in [0, n), n ≥ 1 (bias ≤ n / 2^32, negligible for pool sizes). */
  below(n: number): number {
    return Math.floor((this.next() / TWO_32) * n);
  }
}
