// The shared GCRA table on a fake clock: burst then one per interval, several RateTable views of
// one buffer (as threads have) sharing one bucket, independent keys, µs and ms units, eviction of
// idle keys when a probe window is full, and no wrap trouble for a key left idle a long time.

import t from 'tap';
import { RATE_ENTRIES, RATE_PROBE, TOTAL_WORDS } from '../../src/state/layout.js';
import { RateLimitParams, RateTable, SWEEP_EVERY_MS } from '../../src/edge/rate-table.js';

function tables(n: number): { views: RateTable[]; clock: { ms: number } } {
  const words = new Int32Array(new SharedArrayBuffer(TOTAL_WORDS * 4));
  const clock = { ms: 1_000_000 };
  return { views: Array.from({ length: n }, () => new RateTable(words, 0, () => clock.ms)), clock };
}

t.test('burst at once, then one per interval', async (t) => {
  const { views: [rt], clock } = tables(1);
  const p = new RateLimitParams('r/0', 10, 1000, 5); // 10/s, burst 5: T = 100 ms
  let n = 0;
  while (rt!.take(p, 'k')) n++;
  t.equal(n, 5, 'a full bucket admits the burst');
  t.equal(rt!.retryAfterMs, 100, 'and the next token is one interval away');
  clock.ms += 99;
  t.notOk(rt!.take(p, 'k'), '1 ms early is still refused');
  clock.ms += 1;
  t.ok(rt!.take(p, 'k'), 'on time is admitted');
  t.notOk(rt!.take(p, 'k'));
  clock.ms += 1000;
  let m = 0;
  while (rt!.take(p, 'k')) m++;
  t.equal(m, 5, 'refilled to the burst, never beyond');
});

t.test('views of one buffer share the bucket (threads)', async (t) => {
  const { views } = tables(4);
  const p = new RateLimitParams('r/0', 1, 60_000, 20);
  let admitted = 0;
  for (let i = 0; i < 400; i++) if (views[i % 4]!.take(p, 'one-key')) admitted++;
  t.equal(admitted, 20);
});

t.test('keys and limits are independent', async (t) => {
  const { views: [rt] } = tables(1);
  const a = new RateLimitParams('r/0', 1, 60_000, 2);
  const b = new RateLimitParams('r/1', 1, 60_000, 2);
  t.ok(rt!.take(a, 'x') && rt!.take(a, 'x'));
  t.notOk(rt!.take(a, 'x'));
  t.ok(rt!.take(a, 'y'), 'another key');
  t.ok(rt!.take(b, 'x'), 'another limit, same key');
});

t.test('a bucket deeper than the table can hold is refused (--check refuses it first)', async (t) => {
  t.throws(() => new RateLimitParams('deep', 1, 3_600_000, 30000), /deeper than/);
});

t.test('slow limits count in ms, fast ones in µs; both exact', async (t) => {
  const slow = new RateLimitParams('s', 10, 86_400_000, 10); // 10/day
  const fast = new RateLimitParams('f', 100_000, 1000, 10); // 100k/s: T = 10 µs
  t.equal(slow.unitsPerMs, 1);
  t.equal(fast.unitsPerMs, 1000);
  const { views: [rt], clock } = tables(1);
  let n = 0;
  while (rt!.take(fast, 'k')) n++;
  t.equal(n, 10);
  clock.ms += 0.05; // 50 µs: 5 tokens
  n = 0;
  while (rt!.take(fast, 'k')) n++;
  t.equal(n, 5);
  for (let i = 0; i < 10; i++) t.ok(rt!.take(slow, 'k'));
  t.notOk(rt!.take(slow, 'k'));
  t.equal(rt!.retryAfterMs, 8_640_000, 'a tenth of a day');
});

t.test('a key idle for longer than the 32-bit µs window reads as a full bucket (the sweep keeps TAT near now)', async (t) => {
  const { views: [rt], clock } = tables(1);
  const p = new RateLimitParams('r', 1, 1000, 3);
  for (let i = 0; i < 3; i++) rt!.take(p, 'k');
  t.notOk(rt!.take(p, 'k'));
  // An hour in steps of the workers' sweep period: the µs clock's low 32 bits wrap meanwhile.
  for (let m = 0; m < 30; m++) {
    clock.ms += SWEEP_EVERY_MS;
    rt!.sweep();
  }
  let n = 0;
  while (rt!.take(p, 'k')) n++;
  t.equal(n, 3);
});

t.test('a full probe window evicts an idle key first, bounded memory', async (t) => {
  const { views: [rt], clock } = tables(1);
  const p = new RateLimitParams('e', 1, 60_000, 1);
  // Far more keys than entries: the table never grows, and fresh keys still get their burst.
  for (let i = 0; i < RATE_ENTRIES * 2; i++) rt!.take(p, 'k' + i);
  t.ok(rt!.evictions > 0, 'live keys were evicted when every window was full');
  clock.ms += 120_000;
  const before = rt!.evictions;
  for (let i = 0; i < RATE_PROBE * 4; i++) t.ok(rt!.take(p, 'fresh' + i), 'a new key after the others went idle');
  t.equal(rt!.evictions, before, 'idle entries are reused without counting as an eviction');
});

t.test('real threads racing on one key: the compareExchange loop admits exactly the burst', async (t) => {
  const { Worker } = await import('node:worker_threads');
  const { fileURLToPath } = await import('node:url');
  const { ensureBuilt } = await import('../helpers/sluice.js');
  await ensureBuilt();
  const module = fileURLToPath(new URL('../../dist/src/edge/rate-table.js', import.meta.url));
  const buffer = new SharedArrayBuffer(TOTAL_WORDS * 4);
  // Each of 4 threads tries 20,000 takes at once on one key (and 2,000 fresh keys, so entries are
  // claimed concurrently too); a 1/10s limit cannot refill while the threads run.
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.module).then(({ RateLimitParams, RateTable }) => {
      const rt = new RateTable(new Int32Array(workerData.buffer), 0);
      const p = new RateLimitParams('race', 1, 10_000, 30000);
      const q = new RateLimitParams('fresh', 1, 10_000, 1);
      let one = 0, fresh = 0;
      for (let i = 0; i < 20000; i++) {
        if (rt.take(p, 'hot')) one++;
        if (i < 2000 && rt.take(q, 'k' + i)) fresh++;
      }
      parentPort.postMessage({ one, fresh });
    });`;
  const results = await Promise.all(
    Array.from({ length: 4 }, () => new Promise<{ one: number; fresh: number }>((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: { module, buffer } });
      w.once('message', resolve);
      w.once('error', reject);
    })),
  );
  t.equal(results.reduce((a, r) => a + r.one, 0), 30000, 'one shared bucket: exactly its burst');
  t.equal(results.reduce((a, r) => a + r.fresh, 0), 2000, 'each fresh key admitted once across 4 threads (no twin entries)');
});
