// Passive outlier detection on a fake clock: streak thresholds, first-writer-wins between workers,
// growing and capped back-off, the share of the pool that may be out, and what disables it.

import t from 'tap';
import type { Upstream } from '../../src/config/types.js';
import { OutlierDetector, ejectionCap, ejectionMs, type OutlierOptions } from '../../src/health/outlier.js';
import { C } from '../../src/state/layout.js';
import { Membership } from '../../src/state/membership.js';
import { SharedTable } from '../../src/state/table.js';

const OPTIONS: OutlierOptions = {
  consecutive5xx: 5,
  consecutiveFailures: 5,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectionPercent: 10,
};

function upstream(i: number): Upstream {
  return { url: `http://10.0.0.${i}:80`, protocol: 'http:', host: `10.0.0.${i}`, port: 80, weight: 1 };
}

/** A table with `n` live backends (slots 0..n-1) and a detector over it. */
function setup(n: number, overrides: Partial<OutlierOptions> = {}) {
  const table = new SharedTable();
  const membership = new Membership(table);
  membership.assign(Array.from({ length: n }, (_, i) => upstream(i + 1)));
  const options = { ...OPTIONS, ...overrides };
  return { table, membership, options, detector: new OutlierDetector(table, options) };
}

/** `count` failures of `kind` on `slot` at `now`; returns how many of them ejected. */
function fail(d: OutlierDetector, slot: number, kind: '5xx' | 'connect', count: number, now: number): number {
  let ejected = 0;
  for (let i = 0; i < count; i++) if (d.onFailure(slot, kind, now)) ejected++;
  return ejected;
}

t.test('the 5th consecutive 5xx ejects for the base time; the 4th does not', async (t) => {
  const { table, detector } = setup(3);
  const now = 1000;
  t.equal(fail(detector, 0, '5xx', 4, now), 0);
  t.equal(table.get(C.CONSEC_5XX, 0), 4);
  t.notOk(detector.ejected(0, now));
  t.ok(table.available(0, now));
  t.ok(detector.onFailure(0, '5xx', now), 'the 5th ejects');
  t.equal(table.get(C.EJECTED_UNTIL, 0), now + 30_000);
  t.equal(table.get(C.EJECTIONS, 0), 1);
  t.equal(table.get(C.SLOW_START_AT, 0), now + 30_000, 'slow start begins when the ejection ends');
  t.notOk(table.available(0, now + 29_999), 'out of rotation while ejected');
  t.ok(table.available(0, now + 30_000), 'back when it ends');
});

t.test('a success ends both streaks; a 5xx ends the connect streak but not the reverse', async (t) => {
  const { table, detector } = setup(3);
  fail(detector, 1, '5xx', 4, 10);
  detector.onSuccess(1);
  t.equal(table.get(C.CONSEC_5XX, 1), 0);
  t.equal(fail(detector, 1, '5xx', 4, 10), 0, 'the streak starts over');

  fail(detector, 2, 'connect', 3, 10);
  detector.onFailure(2, '5xx', 10);
  t.equal(table.get(C.CONSEC_FAIL, 2), 0, 'a 5xx response proves the backend accepts connections');
  t.equal(table.get(C.CONSEC_5XX, 2), 1);
  fail(detector, 2, 'connect', 2, 10);
  t.equal(table.get(C.CONSEC_5XX, 2), 1, 'connect failures leave the 5xx streak alone');
});

t.test('consecutive connect failures eject on their own threshold', async (t) => {
  const { table, detector } = setup(3, { consecutiveFailures: 3 });
  t.equal(fail(detector, 2, 'connect', 2, 50), 0);
  t.ok(detector.onFailure(2, 'connect', 50));
  t.equal(table.get(C.EJECTED_UNTIL, 2), 50 + 30_000);
});

t.test('two workers reaching the threshold together: exactly one ejects', async (t) => {
  const { table, options } = setup(3);
  const a = new OutlierDetector(table, options);
  const b = new OutlierDetector(new SharedTable(table.buffer, 1), options);
  fail(a, 0, '5xx', 2, 100);
  fail(b, 0, '5xx', 2, 100);
  t.ok(a.onFailure(0, '5xx', 100), 'worker a ejects at the shared 5th');
  t.notOk(b.onFailure(0, '5xx', 100), 'worker b finds it ejected');
  t.notOk(b.onFailure(0, '5xx', 101), 'stragglers in flight do not extend it');
  t.equal(table.get(C.EJECTIONS, 0), 1);
  t.equal(table.get(C.EJECTED_UNTIL, 0), 100 + 30_000);
});

t.test('back-off grows with ejections in a row, is capped, and starts over after a quiet spell', async (t) => {
  const { table, detector, options } = setup(3, { consecutive5xx: 2 });
  let now = 0;
  const lengths: number[] = [];
  fail(detector, 0, '5xx', 2, now);
  for (let round = 0; round < 12; round++) {
    const until = table.get(C.EJECTED_UNTIL, 0);
    lengths.push(until - now);
    now = until; // probation: the first failure after the ejection ends ejects again
    t.ok(detector.onFailure(0, '5xx', now), `round ${round}: one more failure ejects again`);
  }
  t.same(lengths.slice(0, 4), [30_000, 60_000, 90_000, 120_000]);
  t.equal(Math.max(...lengths), options.maxEjectionMs, 'never longer than the maximum');
  t.equal(lengths.at(-1), 300_000);

  // Recovered: a success clears probation; a maximum ejection time later the count starts over.
  now = table.get(C.EJECTED_UNTIL, 0);
  detector.onSuccess(0);
  now += options.maxEjectionMs;
  t.equal(fail(detector, 0, '5xx', 2, now), 1);
  t.equal(table.get(C.EJECTED_UNTIL, 0) - now, 30_000, 'back to the base time');
  t.equal(table.get(C.EJECTIONS, 0), 1);
});

t.test('ejection length and cap formulas', async (t) => {
  t.equal(ejectionMs(1, OPTIONS), 30_000);
  t.equal(ejectionMs(0, OPTIONS), 30_000, 'k below 1 counts as the first');
  t.equal(ejectionMs(7, OPTIONS), 210_000);
  t.equal(ejectionMs(50, OPTIONS), 300_000);
  t.equal(ejectionMs(1, { ...OPTIONS, maxEjectionMs: 1000 }), 1000, 'a maximum below the base wins');
  t.equal(ejectionCap(3, 10), 1, 'at least one');
  t.equal(ejectionCap(10, 10), 1);
  t.equal(ejectionCap(25, 10), 2, 'rounded down');
  t.equal(ejectionCap(100, 50), 50);
  t.equal(ejectionCap(4, 100), 4);
  t.equal(ejectionCap(10, 0), 0, '0% ejects nothing');
  t.equal(ejectionCap(0, 10), 0, 'an empty pool ejects nothing');
});

t.test('never more than the allowed share of the pool is ejected at once', async (t) => {
  const { table, detector } = setup(20); // 10% of 20 = 2
  t.equal(fail(detector, 0, '5xx', 5, 10), 1);
  t.equal(fail(detector, 1, '5xx', 5, 10), 1);
  t.equal(fail(detector, 2, '5xx', 5, 10), 0, 'a third would exceed 10%');
  t.equal(table.get(C.EJECTED_UNTIL, 2), 0);
  t.equal(table.get(C.CONSEC_5XX, 2), 0, 'its streak restarts rather than rescanning on every failure');
  t.equal(fail(detector, 2, '5xx', 4, 10), 0);
  // Once the first ejections end there is room again.
  const later = 10 + 30_000;
  t.ok(detector.onFailure(2, '5xx', later), 'ejected once the others are back');
});

t.test('a small pool may still eject its one bad backend, but only one', async (t) => {
  const { detector } = setup(3);
  t.equal(fail(detector, 0, 'connect', 5, 10), 1);
  t.equal(fail(detector, 1, 'connect', 5, 10), 0);
});

t.test('removed backends are not part of the pool the share is taken of', async (t) => {
  const { membership, detector } = setup(20);
  const live = membership.assign([upstream(1), upstream(2), upstream(3)]); // 17 removed: 3 live, cap 1
  detector.setMembers(live.map((b) => b.slot));
  t.equal(fail(detector, 0, '5xx', 5, 10), 1);
  t.equal(fail(detector, 1, '5xx', 5, 10), 0, 'the cap is 1 of 3, not 2 of 20');
});

t.test('thresholds of 0 and a 0% share turn ejection off', async (t) => {
  const off5xx = setup(3, { consecutive5xx: 0 });
  t.equal(fail(off5xx.detector, 0, '5xx', 100, 10), 0);
  t.equal(fail(off5xx.detector, 0, 'connect', 5, 10), 1, 'connect failures still eject');
  const offConnect = setup(3, { consecutiveFailures: 0 });
  t.equal(fail(offConnect.detector, 0, 'connect', 100, 10), 0);
  const none = setup(3, { maxEjectionPercent: 0 });
  t.equal(fail(none.detector, 0, '5xx', 100, 10) + fail(none.detector, 1, 'connect', 100, 10), 0);
});

t.test('setOptions applies new thresholds to the next outcome', async (t) => {
  const { detector, options } = setup(3);
  fail(detector, 0, '5xx', 3, 10);
  detector.setOptions({ ...options, consecutive5xx: 4 });
  t.ok(detector.onFailure(0, '5xx', 10), 'the 4th now ejects');
});

t.test('two workers ejecting two backends at once back out rather than exceed the share', async (t) => {
  // Another worker's ejection of slot 1 lands between this worker's cap check and its
  // compareExchange: simulated by a table whose third SLOTS_USED read (the recount) publishes it.
  class RacingTable extends SharedTable {
    reads = 0;
    override header(word: number): number {
      if (++this.reads === 3) this.set(C.EJECTED_UNTIL, 1, 10 + 30_000);
      return super.header(word);
    }
  }
  const { table, options } = setup(3); // cap 1
  const racing = new RacingTable(table.buffer);
  const detector = new OutlierDetector(racing, options);
  fail(detector, 0, '5xx', 4, 10);
  racing.reads = 0;
  t.notOk(detector.onFailure(0, '5xx', 10), 'backed out');
  t.equal(table.get(C.EJECTED_UNTIL, 0), 0, 'its ejection was undone');
  t.equal(table.get(C.EJECTIONS, 0), 0);
  t.equal(table.get(C.CONSEC_5XX, 0), 0);
  t.ok(table.get(C.EJECTED_UNTIL, 1) > 10, 'the other ejection stands: one out, as allowed');
});
