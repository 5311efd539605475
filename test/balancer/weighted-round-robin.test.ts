import t from 'tap';
import { WeightedRoundRobin } from '../../src/balancer/weighted-round-robin.js';
import { Rng } from '../../src/balancer/rng.js';
import { C, Health, WEIGHT_SCALE } from '../../src/state/layout.js';
import { ctx, options, pool, tally } from './fixtures/pool.js';

t.test('nginx smooth sequence for {5, 1, 1}', async (t) => {
  const { table, members } = pool([5, 1, 1]);
  const wrr = new WeightedRoundRobin(table, members, options());
  const c = ctx();
  const seq = Array.from({ length: 14 }, () => wrr.pick(c));
  t.same(seq, [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]);
});

t.test('property: weights exact per cycle, within 0.1% over 100k picks', async (t) => {
  const rng = new Rng(9);
  for (let trial = 0; trial < 20; trial++) {
    const weights = Array.from({ length: 2 + rng.below(6) }, () => 1 + rng.below(20));
    const { table, members } = pool(weights);
    const wrr = new WeightedRoundRobin(table, members, options());
    const total = weights.reduce((a, b) => a + b, 0);
    const n = 100_000;
    const counts = tally((c) => wrr.pick(c), n);
    for (let s = 0; s < weights.length; s++) {
      const expected = (n * weights[s]!) / total;
      if (Math.abs(counts.get(s)! - expected) > Math.max(1, expected * 0.001)) {
        t.fail(`weights ${weights}: slot ${s} got ${counts.get(s)}, expected ${expected}`);
      }
    }
  }
  t.pass('20 random weight sets');
});

t.test('property: never more than ceil(w / w_min) picks in a row to one backend', async (t) => {
  const rng = new Rng(10);
  let longest = 0;
  for (let trial = 0; trial < 200; trial++) {
    // Integer and fractional weights alike (weights are stored × 100).
    const weights = Array.from({ length: 2 + rng.below(6) }, () => (1 + rng.below(1000)) / 100);
    const { table, members } = pool(weights);
    const wrr = new WeightedRoundRobin(table, members, options());
    const min = Math.min(...weights);
    const c = ctx();
    let prev = -1;
    let run = 0;
    for (let i = 0; i < 5000; i++) {
      const s = wrr.pick(c);
      run = s === prev ? run + 1 : 1;
      prev = s;
      longest = Math.max(longest, run);
      if (run > Math.ceil(weights[s]! / min)) {
        t.fail(`weights ${weights}: ${run} in a row to slot ${s}`);
        return;
      }
    }
  }
  t.ok(longest > 1, `checked (longest run seen ${longest})`);
});

t.test('skips unavailable members; live weight changes apply', async (t) => {
  const { table, members } = pool([1, 1, 2]);
  table.set(C.HEALTH, 0, Health.UNHEALTHY);
  const wrr = new WeightedRoundRobin(table, members, options());
  let counts = tally((c) => wrr.pick(c), 3000);
  t.equal(counts.get(0), undefined);
  t.equal(counts.get(1), 1000);
  t.equal(counts.get(2), 2000);
  table.set(C.WEIGHT, 2, 1 * WEIGHT_SCALE);
  counts = tally((c) => wrr.pick(c), 3000, 10_000);
  t.ok(Math.abs(counts.get(1)! - 1500) <= 1 && Math.abs(counts.get(2)! - 1500) <= 1, 'even after the weight change');
});

t.test('slow start: a ramping member gets its ramped share', async (t) => {
  const { table, members } = pool([1, 1]);
  table.set(C.SLOW_START_AT, 1, 1);
  const wrr = new WeightedRoundRobin(table, members, options({ slowStartMs: 1e9 }));
  const n = 100_000;
  const counts = tally((c) => wrr.pick(c), n, 1 + 5e8);
  const share = counts.get(1)! / n;
  t.ok(Math.abs(share - 0.55 / 1.55) < 0.005, `share ${share.toFixed(4)} ≈ ${(0.55 / 1.55).toFixed(4)}`);
});
