import t from 'tap';
import { WeightedRandom } from '../../src/balancer/weighted-random.js';
import { Rng } from '../../src/balancer/rng.js';
import { C, Health } from '../../src/state/layout.js';
import { options, pool, tally } from './fixtures/pool.js';

t.test('property: shares follow weights within 1.5 points over 100k picks', async (t) => {
  const rng = new Rng(3);
  for (let trial = 0; trial < 10; trial++) {
    const weights = Array.from({ length: 2 + rng.below(6) }, () => (1 + rng.below(500)) / 100);
    const { table, members } = pool(weights);
    const wr = new WeightedRandom(table, members, options({ seed: trial }));
    const total = weights.reduce((a, b) => a + b, 0);
    const n = 100_000;
    const counts = tally((c) => wr.pick(c), n);
    for (let s = 0; s < weights.length; s++) {
      const share = (counts.get(s) ?? 0) / n;
      if (Math.abs(share - weights[s]! / total) > 0.015) t.fail(`weights ${weights}: slot ${s} share ${share}`);
    }
  }
  t.pass('10 random weight sets');
});

t.test('unavailable members get nothing; the rest keep their ratio', async (t) => {
  const { table, members } = pool([1, 3, 6]);
  table.set(C.HEALTH, 2, Health.UNHEALTHY);
  const wr = new WeightedRandom(table, members, options({ panicThresholdPercent: 0 }));
  const n = 100_000;
  const counts = tally((c) => wr.pick(c), n);
  t.equal(counts.get(2), undefined);
  t.ok(Math.abs(counts.get(1)! / n - 0.75) < 0.01);
});
