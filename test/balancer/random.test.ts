import t from 'tap';
import { RandomPolicy } from '../../src/balancer/random.js';
import { C, Health } from '../../src/state/layout.js';
import { ctx, options, pool, tally } from './fixtures/pool.js';

t.test('uniform over available members within 3%, ignoring weights', async (t) => {
  const { table, members } = pool([1, 9, 1, 1, 1]);
  table.set(C.HEALTH, 4, Health.UNHEALTHY);
  const r = new RandomPolicy(table, members, options());
  const n = 100_000;
  const counts = tally((c) => r.pick(c), n);
  t.equal(counts.get(4), undefined);
  for (const s of [0, 1, 2, 3]) t.ok(Math.abs(counts.get(s)! / (n / 4) - 1) < 0.03, `slot ${s}: ${counts.get(s)}`);
});

t.test('seeded: same seed, same picks; another seed, other picks', async (t) => {
  const { table, members } = pool([1, 1, 1, 1, 1]);
  const seq = (seed: number) => {
    const r = new RandomPolicy(table, members, options({ seed }));
    const c = ctx();
    return Array.from({ length: 50 }, () => r.pick(c)).join();
  };
  t.equal(seq(1), seq(1));
  t.not(seq(1), seq(2));
});

t.test('slow start by rejection: ramping share ∝ factor', async (t) => {
  const { table, members } = pool([1, 1]);
  table.set(C.SLOW_START_AT, 0, 1);
  const r = new RandomPolicy(table, members, options({ slowStartMs: 1e9 }));
  const n = 100_000;
  const counts = tally((c) => r.pick(c), n, 1 + 5e8);
  const share = counts.get(0)! / n;
  t.ok(Math.abs(share - 0.55 / 1.55) < 0.01, `share ${share.toFixed(3)} ≈ ${(0.55 / 1.55).toFixed(3)}`);
});
