import t from 'tap';
import {
  RISE_MS, RISE_STEP_MS, SERVICE_DECAY_MS, concurrency, latencyUs, recordService, recordServiceFailure, resetService, sampleAge, serviceUs,
} from '../../src/balancer/service-time.js';
import { PROBE_INTERVAL_MS } from '../../src/balancer/peak-ewma.js';
import { H, STALE_MS } from '../../src/state/layout.js';
import { pool } from './fixtures/pool.js';

t.test('the first sample is taken as is; service time is latency ÷ concurrency', async (t) => {
  const { table } = pool([1]);
  t.equal(latencyUs(table, 0), 0, 'no sample yet');
  t.equal(sampleAge(table, 0, 5), Infinity);
  recordService(table, 0, 8000, 4, 10);
  t.equal(latencyUs(table, 0), 8000);
  t.equal(concurrency(table, 0), 4);
  t.equal(serviceUs(table, 0), 2000);
  t.equal(sampleAge(table, 0, 15), 5);
  recordService(table, 1, 500, 0, 10);
  t.equal(concurrency(table, 1), 1, 'concurrency below 1 counts as 1');
});

t.test('rises with τ RISE_MS, falls with τ SERVICE_DECAY_MS, by time not by sample count', async (t) => {
  const { table } = pool([1]);
  recordService(table, 0, 1000, 1, 100);
  recordService(table, 0, 41_000, 1, 100 + RISE_MS);
  const up = latencyUs(table, 0);
  const step = 1 - Math.exp(-RISE_STEP_MS / RISE_MS);
  t.ok(Math.abs(up - (1000 + 40_000 * step)) <= 1, `after a gap, one sample rises at most RISE_STEP_MS's worth: ${up}`);
  recordService(table, 0, 41_000, 1, 100 + RISE_MS);
  t.equal(latencyUs(table, 0), up, 'a second sample in the same ms has no weight');
  for (let ms = 1; ms <= 5 * RISE_MS; ms++) recordService(table, 0, 41_000, 1, 100 + RISE_MS + ms);
  t.ok(latencyUs(table, 0) > 40_000, 'a level that lasts is believed');
  const top = latencyUs(table, 0);
  const at = 100 + 6 * RISE_MS;
  recordService(table, 0, 1000, 1, at + SERVICE_DECAY_MS);
  const down = latencyUs(table, 0);
  t.ok(Math.abs(down - (1000 + (top - 1000) * Math.exp(-1))) <= 1, `one τ down: ${down}`);
});

t.test('a stall in the proxy moves the estimate by a fraction of its length', async (t) => {
  // 1 ms answers every ms, then a 50 ms gap (the worker's loop was blocked) and answers 50 ms late.
  const { table } = pool([1]);
  for (let ms = 1; ms <= 100; ms++) recordService(table, 0, 1000, 10, ms);
  for (let k = 0; k < 10; k++) recordService(table, 0, 51_000, 10, 150);
  const after = latencyUs(table, 0);
  t.ok(after < 15_000, `${after} µs after a 50 ms stall: still well below a 40 ms backend`);
});

t.test('a shunned backend probed every PROBE_INTERVAL_MS follows its probes down faster than up', async (t) => {
  // Recovered (1 ms) but one probe in four is unlucky (30 ms, the machine was busy): it returns.
  const { table } = pool([1]);
  recordService(table, 0, 40_000, 1, 1);
  let now = 1;
  for (let k = 1; k <= 16; k++) recordService(table, 0, k % 4 === 0 ? 30_000 : 1000, 1, (now += PROBE_INTERVAL_MS));
  t.ok(latencyUs(table, 0) < 8000, `after 8 s of probes: ${latencyUs(table, 0)} µs`);
});

t.test('a failure counts as a penalty answer at concurrency 1; reset forgets', async (t) => {
  const { table } = pool([1]);
  recordService(table, 0, 1000, 8, 1);
  for (let ms = 2; ms < 2 + 5 * RISE_MS; ms += 10) recordServiceFailure(table, 0, ms, 1_000_000);
  t.ok(latencyUs(table, 0) > 900_000, 'repeated failures look slow');
  t.ok(concurrency(table, 0) < 8, 'and pull the concurrency toward 1');
  resetService(table, 0);
  t.equal(latencyUs(table, 0), 0);
  t.equal(concurrency(table, 0), 1);
});

t.test('the stamp is a wrap-safe time stamp and is retired like the others', async (t) => {
  const { table } = pool([1]);
  const near = 2 ** 32 - 3; // table time whose low 32 bits wrap within the next few ms
  recordService(table, 0, 1000, 1, near);
  recordService(table, 0, 500, 1, near + 10);
  t.equal(sampleAge(table, 0, near + 10), 0, 'age across the 32-bit wrap');
  t.ok(latencyUs(table, 0) < 1000, 'the lower sample blended in across the wrap');
  table.setHeader(H.SLOTS_USED, 1);
  t.ok(table.retireStaleTimes(near + 10 + STALE_MS + 1) >= 1, 'retired after STALE_MS');
  t.equal(sampleAge(table, 0, near + 10 + STALE_MS + 2), Infinity);
});
