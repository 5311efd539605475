import t from 'tap';
import { LeastConn } from '../../src/balancer/least-conn.js';
import { C, Health } from '../../src/state/layout.js';
import { ctx, options, pool, tally } from './fixtures/pool.js';

t.test('picks the member with the fewest open connections', async (t) => {
  const { table, members } = pool([1, 1, 1, 1]);
  table.set(C.OPEN_CONNS, 0, 5);
  table.set(C.OPEN_CONNS, 1, 2);
  table.set(C.OPEN_CONNS, 2, 7);
  table.set(C.OPEN_CONNS, 3, 3);
  const lc = new LeastConn(table, members, options());
  t.equal(lc.pick(ctx()), 1);
  table.set(C.HEALTH, 1, Health.UNHEALTHY);
  t.equal(lc.pick(ctx(2)), 3, 'an unavailable member is skipped');
  t.equal(lc.pick(ctx(3, 3)), 0, 'exclude honoured');
});

t.test('ties spread across members instead of piling on the first', async (t) => {
  const { table, members } = pool([1, 1, 1, 1]);
  const lc = new LeastConn(table, members, options());
  const counts = tally((c) => lc.pick(c), 40_000);
  for (let s = 0; s < 4; s++) t.ok(Math.abs(counts.get(s)! / 10_000 - 1) < 0.05, `slot ${s}: ${counts.get(s)}`);
});

t.test('long-lived connections settle in proportion to the weights', async (t) => {
  const weights = [1, 2, 5];
  const { table, members } = pool(weights);
  const lc = new LeastConn(table, members, options());
  const c = ctx();
  for (let i = 0; i < 800; i++) {
    c.now = i + 1;
    table.add(C.OPEN_CONNS, lc.pick(c), 1);
  }
  t.same([0, 1, 2].map((s) => table.get(C.OPEN_CONNS, s)), [100, 200, 500]);
});
