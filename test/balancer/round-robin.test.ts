import t from 'tap';
import { RoundRobin } from '../../src/balancer/round-robin.js';
import { C, H, Health, P, TOTAL_WORDS, poolCell } from '../../src/state/layout.js';
import { ctx, options, pool, tally } from './fixtures/pool.js';

t.test('visits each member in turn, ignoring weights', async (t) => {
  const { table, members } = pool([1, 5, 1]);
  const rr = new RoundRobin(table, members, options());
  const c = ctx();
  const seq = Array.from({ length: 9 }, () => rr.pick(c));
  t.same(seq, [0, 1, 2, 0, 1, 2, 0, 1, 2]);
});

t.test('the cursor is shared: two instances (two workers) rotate as one', async (t) => {
  const { table, members } = pool([1, 1, 1, 1]);
  const a = new RoundRobin(table, members, options({ seed: 1 }));
  const b = new RoundRobin(table, members, options({ seed: 2 }));
  const c = ctx();
  const seq = [a.pick(c), b.pick(c), b.pick(c), a.pick(c), b.pick(c), a.pick(c), a.pick(c), b.pick(c)];
  t.same(seq, [0, 1, 2, 3, 0, 1, 2, 3]);
  t.equal(table.header(H.RR_CURSOR), 8);
});

t.test('cursorWord gives a pool its own cursor', async (t) => {
  const { table, members } = pool([1, 1]);
  const a = new RoundRobin(table, members, options({ cursorWord: poolCell(P.RR_CURSOR, 0) }));
  const b = new RoundRobin(table, members, options({ cursorWord: poolCell(P.RR_CURSOR, 1) }));
  const c = ctx();
  // Strictly alternating pools of 2 on one shared word would each see only even cursor values.
  const seqA: number[] = [];
  for (let i = 0; i < 6; i++) {
    seqA.push(a.pick(c));
    b.pick(c);
  }
  t.same(seqA, [0, 1, 0, 1, 0, 1]);
  t.equal(table.header(H.RR_CURSOR), 0);
  t.equal(Atomics.load(table.words, poolCell(P.RR_CURSOR, 0)), 6, 'each pool advanced its own word');
  t.throws(() => new RoundRobin(table, members, options({ cursorWord: TOTAL_WORDS })), RangeError);
  t.throws(() => new RoundRobin(table, members, options({ cursorWord: -1 })), RangeError);
});

t.test('survives the Int32 wrap of the cursor', async (t) => {
  const { table, members } = pool([1, 1, 1]);
  table.setHeader(H.RR_CURSOR, 0x7fffffff);
  const rr = new RoundRobin(table, members, options());
  const c = ctx();
  for (let i = 0; i < 6; i++) {
    const s = rr.pick(c);
    if (s < 0 || s > 2) t.fail(`bad slot ${s}`);
  }
  t.pass('picks stay valid across the wrap');
});

t.test('skips unavailable members and spreads evenly over the rest', async (t) => {
  const { table, members } = pool([1, 1, 1, 1]);
  table.set(C.HEALTH, 2, Health.UNHEALTHY);
  const rr = new RoundRobin(table, members, options());
  const counts = tally((c) => rr.pick(c), 30_000);
  t.equal(counts.get(2), undefined);
  for (const s of [0, 1, 3]) t.equal(counts.get(s), 10_000);
});

t.test('slow start: a ramping member takes its turn with probability = its factor', async (t) => {
  const { table, members } = pool([1, 1, 1]);
  table.set(C.SLOW_START_AT, 0, 1);
  const rr = new RoundRobin(table, members, options({ slowStartMs: 1e9 }));
  // factor ≈ 0.1 + 0.9 × 0.5 = 0.55 throughout (the tally moves the clock by only 100k ms).
  const n = 100_000;
  const counts = tally((c) => rr.pick(c), n, 1 + 5e8);
  const share = counts.get(0)! / n;
  t.ok(Math.abs(share - 0.55 / 3) < 0.01, `ramping share ${share.toFixed(3)} ≈ ${(0.55 / 3).toFixed(3)}`);
});
