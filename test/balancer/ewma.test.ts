import t from 'tap';
import { currentEwmaUs, recordFailure, recordLatency } from '../../src/balancer/ewma.js';
import { pool } from './fixtures/pool.js';

const TAU = 10_000;

t.test('no sample: the default; first sample taken as is', async (t) => {
  const { table } = pool([1]);
  t.equal(currentEwmaUs(table, 0, 100, TAU, 7000), 7000);
  recordLatency(table, 0, 2500.4, 100, TAU);
  t.equal(table.ewmaUs(0), 2500);
  t.equal(table.ewmaStamp(0), 100);
  t.equal(currentEwmaUs(table, 0, 100, TAU, 7000), 2500);
});

t.test('peak: a higher sample replaces the value at once', async (t) => {
  const { table } = pool([1]);
  recordLatency(table, 0, 1000, 100, TAU);
  recordLatency(table, 0, 50_000, 101, TAU);
  t.equal(table.ewmaUs(0), 50_000);
});

t.test('a lower sample blends with weight 1 - exp(-Δt/τ)', async (t) => {
  const { table } = pool([1]);
  // Not at table time 0: its stamp would be stored as 1 (0 is the "long ago" sentinel).
  recordLatency(table, 0, 10_000, 5, TAU);
  recordLatency(table, 0, 1000, 5 + TAU, TAU); // Δt = τ: w = 1/e
  const w = Math.exp(-1);
  t.equal(table.ewmaUs(0), Math.floor(10_000 * w + 1000 * (1 - w)));
  const before = table.ewmaUs(0);
  recordLatency(table, 0, 1, 5 + TAU, TAU); // Δt = 0: no weight for the new sample
  t.equal(table.ewmaUs(0), before);
});

t.test('reads decay by exp(-Δt/τ) without writing', async (t) => {
  const { table } = pool([1]);
  recordLatency(table, 0, 8000, 1000, TAU);
  t.ok(Math.abs(currentEwmaUs(table, 0, 1000 + TAU, TAU, 0) - 8000 * Math.exp(-1)) < 1e-6);
  t.ok(currentEwmaUs(table, 0, 1000 + 20 * TAU, TAU, 0) < 1, 'an idle backend decays toward 0');
  t.equal(table.ewmaUs(0), 8000, 'stored value untouched');
  t.equal(table.ewmaStamp(0), 1000);
});

t.test('failures are recorded as slow samples', async (t) => {
  const { table } = pool([1]);
  recordLatency(table, 0, 800, 10, TAU);
  recordFailure(table, 0, 11, TAU, 2_000_000);
  t.equal(table.ewmaUs(0), 2_000_000);
});

t.test('samples are clamped into Int32 and to at least 1 µs', async (t) => {
  const { table } = pool([1, 1]);
  recordLatency(table, 0, 1e12, 1, TAU);
  t.equal(table.ewmaUs(0), 0x7fffffff);
  recordLatency(table, 1, 0, 1, TAU);
  t.equal(table.ewmaUs(1), 1, 'a 0 µs sample must not read as "no sample"');
});

t.test('the stamp only moves forward', async (t) => {
  const { table } = pool([1]);
  recordLatency(table, 0, 1000, 500, TAU);
  recordLatency(table, 0, 2000, 400, TAU); // a worker with a slightly older clock reading
  t.equal(table.ewmaStamp(0), 500);
  t.equal(table.ewmaUs(0), 2000);
});

t.test('frequent lower samples still converge (no rounding pin)', async (t) => {
  const { table } = pool([1]);
  recordLatency(table, 0, 1010, 0, TAU);
  // A sample every 10 ms: each step is 10 µs × (1 − e^-0.001) ≈ 0.01 µs, which rounding would lose.
  for (let now = 10; now <= 200; now += 10) recordLatency(table, 0, 1000, now, TAU);
  t.equal(table.ewmaUs(0), 1000);
});
