import t from 'tap';
import { Candidates, SLOW_START_FLOOR, slowStartFactor } from '../../src/balancer/candidates.js';
import { Admin, C, Health } from '../../src/state/layout.js';
import { options, pool } from './fixtures/pool.js';

function list(c: Candidates): number[] {
  return Array.from(c.slots.subarray(0, c.count));
}

t.test('available members only: unhealthy, ejected, drained, disabled and weight 0 are out', async (t) => {
  const { table, members } = pool([1, 1, 1, 1, 1, 1]);
  table.set(C.HEALTH, 1, Health.UNHEALTHY);
  table.set(C.EJECTED_UNTIL, 2, 100);
  table.set(C.ADMIN, 3, Admin.DRAINING);
  table.set(C.WEIGHT, 4, 0);
  table.set(C.HEALTH, 5, Health.HEALTHY);
  const c = new Candidates(table, members, options({ panicThresholdPercent: 0 }));
  t.equal(c.refresh(50, -1), 2);
  t.same(list(c), [0, 5]);
  t.same(Array.from(c.marked), [1, 0, 0, 0, 0, 1]);
  t.equal(c.panic, false);
  t.equal(c.refresh(100, -1), 3, 'ejection over at EJECTED_UNTIL');
  t.same(list(c), [0, 2, 5]);
});

t.test('panic: below the threshold, every allowed member is a candidate', async (t) => {
  const { table, members } = pool(new Array(10).fill(1));
  for (const s of [0, 1, 2, 3, 4, 5]) table.set(C.HEALTH, s, Health.UNHEALTHY);
  table.set(C.ADMIN, 9, Admin.DISABLED);
  // 3 of 9 allowed are up: 33% < 50%.
  const c = new Candidates(table, members, options({ panicThresholdPercent: 50 }));
  t.equal(c.refresh(1, -1), 9);
  t.equal(c.panic, true);
  t.notOk(list(c).includes(9), 'an operator-disabled member stays out even in panic');
  // 5 of 9 up: 55% ≥ 50%, no panic.
  table.set(C.HEALTH, 4, Health.HEALTHY);
  table.set(C.HEALTH, 5, Health.HEALTHY);
  t.equal(c.refresh(2, -1), 5);
  t.equal(c.panic, false);
});

t.test('panic with nothing healthy spreads over all; threshold 0 turns panic off', async (t) => {
  const { table, members } = pool([1, 1, 1]);
  for (const s of [0, 1, 2]) table.set(C.HEALTH, s, Health.UNHEALTHY);
  t.equal(new Candidates(table, members, options({ panicThresholdPercent: 1 })).refresh(1, -1), 3);
  t.equal(new Candidates(table, members, options({ panicThresholdPercent: 0 })).refresh(1, -1), 0);
});

t.test('exclude is dropped only while another candidate exists', async (t) => {
  const { table, members } = pool([1, 1, 1]);
  const c = new Candidates(table, members, options());
  t.equal(c.refresh(1, 1), 2);
  t.same(list(c), [0, 2]);
  t.equal(c.marked[1], 0);
  table.set(C.HEALTH, 0, Health.UNHEALTHY);
  table.set(C.HEALTH, 2, Health.UNHEALTHY);
  const lone = new Candidates(table, members, options({ panicThresholdPercent: 0 }));
  t.equal(lone.refresh(1, 1), 1, 'the excluded slot is the only one left: keep it');
  t.same(list(lone), [1]);
  t.equal(lone.refresh(1, 7), 1, 'excluding a non-member changes nothing');
});

t.test('snapshot is reused within one millisecond and rebuilt after', async (t) => {
  const { table, members } = pool([1, 1]);
  const c = new Candidates(table, members, options({ panicThresholdPercent: 0 }));
  t.equal(c.refresh(5, -1), 2);
  table.set(C.HEALTH, 0, Health.UNHEALTHY);
  t.equal(c.refresh(5, -1), 2, 'same now: cached');
  t.equal(c.refresh(6, -1), 1, 'next ms: rescanned');
  table.set(C.HEALTH, 0, Health.HEALTHY);
  c.invalidate();
  t.equal(c.refresh(6, -1), 2, 'invalidate forces a rescan');
});

t.test('weights, cumulative sums and weighted index', async (t) => {
  const { table, members } = pool([1, 2, 0.5]);
  const c = new Candidates(table, members, options());
  c.refresh(1, -1);
  t.same(Array.from(c.weights), [100, 200, 50]);
  t.same(Array.from(c.cumulative), [100, 300, 350]);
  t.equal(c.total, 350);
  t.equal(c.uniform, false);
  t.equal(c.weightedIndex(0), 0);
  t.equal(c.weightedIndex(99.9 / 350), 0);
  t.equal(c.weightedIndex(100 / 350), 1);
  t.equal(c.weightedIndex(299 / 350), 1);
  t.equal(c.weightedIndex(0.99999), 2);
  const even = pool([3, 3]);
  const u = new Candidates(even.table, even.members, options());
  u.refresh(1, -1);
  t.equal(u.uniform, true);
});

t.test('slow start ramps the weight from 10% to 100% over the window', async (t) => {
  const { table, members } = pool([1, 1]);
  table.set(C.SLOW_START_AT, 1, 1000);
  t.equal(slowStartFactor(table, 1, 1000, 10_000), SLOW_START_FLOOR);
  t.equal(slowStartFactor(table, 1, 500, 10_000), SLOW_START_FLOOR, 'clock skew: floor, not below');
  t.ok(Math.abs(slowStartFactor(table, 1, 6000, 10_000) - 0.55) < 1e-12);
  t.equal(slowStartFactor(table, 1, 11_000, 10_000), 1);
  t.equal(slowStartFactor(table, 1, 6000, 0), 1, 'window 0: no slow start');
  t.equal(slowStartFactor(table, 0, 6000, 10_000), 1, 'SLOW_START_AT 0: none');
  const c = new Candidates(table, members, options({ slowStartMs: 10_000 }));
  c.refresh(6000, -1);
  t.equal(c.ramping, true);
  t.ok(Math.abs(c.weights[1]! - 55) < 1e-9);
  t.equal(c.uniform, false);
  c.refresh(11_000, -1);
  t.equal(c.ramping, false);
  t.equal(c.uniform, true);
});

t.test('rejects members outside the table', async (t) => {
  const { table } = pool([]);
  t.throws(() => new Candidates(table, [{ slot: 5000, weight: 1, id: 'x' }], options()), RangeError);
});
