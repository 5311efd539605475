// Table time past Int32 (layout.ts, "Time"): on an injected clock started just before 2^31 ms and
// 2^32 ms of uptime (and years later), ejections still end when they should, back-off still grows,
// slow start still ramps, the peak EWMA still decays and blends, and a stamp left alone for
// 49.7 days cannot come back as a future time once the control plane has retired it.

import t from 'tap';
import { SharedTable } from '../../src/state/table.js';
import { C, H, STALE_MS, WEIGHT_SCALE, ageOf, toStamp } from '../../src/state/layout.js';
import { OutlierDetector, type OutlierOptions } from '../../src/health/outlier.js';
import { SLOW_START_FLOOR, slowStartFactor } from '../../src/balancer/candidates.js';
import { currentEwmaUs, recordLatency } from '../../src/balancer/ewma.js';

/** Unix ms when each test's table is made. */
const START = 1_700_000_000_000;
const TAU = 10_000;
const BASE_EJECTION = 30_000;
const OUTLIER: OutlierOptions = {
  consecutive5xx: 1,
  consecutiveFailures: 0,
  baseEjectionMs: BASE_EJECTION,
  maxEjectionMs: 300_000,
  maxEjectionPercent: 100,
};
/** Uptimes to test around: the Int32 sign boundary, the 32-bit wrap, and about five years. */
const BOUNDARIES = [2 ** 31, 2 ** 32, 40 * 2 ** 32];

/** A table on a fake clock with three weighted slots; `at(ms)` sets the table time. */
function clocked(): { table: SharedTable; at(ms: number): number } {
  let unix = START;
  const table = new SharedTable(undefined, -1, () => unix);
  for (let slot = 0; slot < 3; slot++) table.set(C.WEIGHT, slot, WEIGHT_SCALE);
  table.setHeader(H.SLOTS_USED, 3);
  return {
    table,
    at(ms) {
      unix = START + ms;
      return table.now();
    },
  };
}

t.test('now() follows the injected clock past 2^31 ms without wrapping', async (t) => {
  const { table, at } = clocked();
  t.equal(table.now(), 0);
  t.equal(table.epoch, START, 'the epoch is the clock at creation');
  t.equal(at(2 ** 31 + 5), 2 ** 31 + 5);
  t.equal(new SharedTable(table.buffer, 0, () => START + 2 ** 32).now(), 2 ** 32, 'a worker view shares the epoch');
});

t.test('stamps: never 0, and read back relative to now across the wrap', async (t) => {
  t.equal(toStamp(2 ** 32), 1, 'a time whose low 32 bits are 0 is stored 1 ms late');
  t.equal(ageOf(0, 123), Infinity, '0 reads as long ago');
  for (const b of BOUNDARIES) {
    t.equal(ageOf(toStamp(b - 1000), b + 500), 1500, `past, across ${b}`);
    t.equal(ageOf(toStamp(b + 500), b - 1000), -1500, `future, across ${b}`);
  }
});

for (const b of BOUNDARIES) {
  t.test(`ejection across ${b} ms: out for its time, then back, with the back-off growing`, async (t) => {
    const { table, at } = clocked();
    const outliers = new OutlierDetector(table, OUTLIER);
    let now = at(b - 1000);
    t.ok(table.available(0, now));
    t.ok(outliers.onFailure(0, '5xx', now), 'ejected 1 s before the boundary');
    const until = b - 1000 + BASE_EJECTION;
    for (const ms of [b - 1000, b, b + 1, until - 1]) {
      now = at(ms);
      t.notOk(table.available(0, now), `still out at ${ms - b} ms from the boundary`);
      t.ok(outliers.ejected(0, now));
    }
    t.equal(table.get(C.SLOW_START_AT, 0), toStamp(until), 'slow start begins when the ejection ends');
    now = at(until);
    t.ok(table.available(0, now), 'back when the ejection ends');
    t.notOk(outliers.ejected(0, now));
    t.ok(table.available(1, now) && table.available(2, now), 'the others never left');

    // Failing again right away is not a quiet spell: the second ejection is twice as long.
    t.ok(outliers.onFailure(0, '5xx', now), 'ejected again');
    t.equal(table.get(C.EJECTIONS, 0), 2);
    t.notOk(table.available(0, at(until + 2 * BASE_EJECTION - 1)));
    t.ok(table.available(0, at(until + 2 * BASE_EJECTION)));
  });

  t.test(`slow start across ${b} ms ramps from the floor to full weight`, async (t) => {
    const { table } = clocked();
    const window = 10_000;
    table.set(C.SLOW_START_AT, 0, toStamp(b - 1000));
    t.equal(slowStartFactor(table, 0, b - 1000, window), SLOW_START_FLOOR);
    t.equal(slowStartFactor(table, 0, b + 4000, window), SLOW_START_FLOOR + (1 - SLOW_START_FLOOR) * 0.5, 'halfway');
    t.equal(slowStartFactor(table, 0, b + 9000, window), 1, 'done after the window');
  });

  t.test(`peak EWMA across ${b} ms: reads decay, lower samples blend, the stamp moves on`, async (t) => {
    const { table } = clocked();
    recordLatency(table, 0, 10_000, b - 1000, TAU);
    t.ok(Math.abs(currentEwmaUs(table, 0, b - 1000 + TAU, TAU, 0) - 10_000 * Math.exp(-1)) < 1e-6, 'decayed by 1/e after τ');
    recordLatency(table, 0, 1000, b - 1000 + TAU, TAU);
    const w = Math.exp(-1);
    t.equal(table.ewmaUs(0), Math.floor(10_000 * w + 1000 * (1 - w)), 'a lower sample blends by Δt across the boundary');
    t.equal(table.ewmaStamp(0), toStamp(b - 1000 + TAU));
    recordLatency(table, 0, 50_000, b - 1000 + TAU - 5, TAU);
    t.equal(table.ewmaStamp(0), toStamp(b - 1000 + TAU), 'an older clock reading never moves the stamp back');
    t.equal(table.ewmaUs(0), 50_000, 'peak: a higher sample replaces the value');
  });
}

t.test('a stamp retired after a day cannot alias into the future 49.7 days later', async (t) => {
  const { table, at } = clocked();
  const outliers = new OutlierDetector(table, OUTLIER);
  let now = at(1000);
  outliers.onFailure(0, '5xx', now);
  const until = 1000 + BASE_EJECTION;

  // Retirement leaves what is still running or recent alone.
  t.equal(table.retireStaleTimes(at(until - 1)), 0, 'an ejection still running is kept');
  recordLatency(table, 0, 10_000, at(until), TAU);
  t.equal(table.retireStaleTimes(at(until + STALE_MS)), 0, 'a day-old stamp is kept');
  now = at(until + STALE_MS + 1);
  t.equal(table.retireStaleTimes(now), 3, 'EJECTED_UNTIL, SLOW_START_AT and the EWMA stamp are retired');
  t.equal(table.get(C.EJECTED_UNTIL, 0), 0);
  t.equal(table.get(C.SLOW_START_AT, 0), 0);
  t.equal(table.ewmaStamp(0), 0);
  t.equal(currentEwmaUs(table, 0, now, TAU, -1), 0, 'the old estimate reads as fully decayed');

  // 2^32 ms after the ejection ended, its stamp would have read as 30 s ahead: retired, it cannot.
  now = at(until + 2 ** 32 - BASE_EJECTION);
  t.ok(table.available(0, now), 'not ejected again by an old stamp');
  t.equal(slowStartFactor(table, 0, now, 60_000), 1, 'no slow start from an old stamp');
  t.ok(outliers.onFailure(0, '5xx', now), 'a new failure ejects as the first in a row');
  t.equal(table.get(C.EJECTIONS, 0), 1, 'the back-off starts over');
});
