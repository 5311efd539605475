// Per-worker latency recording and the control plane's merge: exact counts and sums, buckets,
// percentiles, snapshots that survive the trip, and a dead worker's data kept.

import t from 'tap';
import { LatencyRecorder } from '../../src/metrics/latency.js';
import { BUCKET_BOUNDS_SECONDS, LatencyAggregator, type WorkerLatency } from '../../src/metrics/latency-merge.js';

function reply(worker: number, threadId: number, r: LatencyRecorder): WorkerLatency {
  // structuredClone: what postMessage does to the snapshot on its way to the main thread.
  return { worker, threadId, snapshot: structuredClone(r.snapshot()) };
}

t.test('records per slot; counts and sums are exact', async (t) => {
  for (const wasm of [true, false]) {
    const r = new LatencyRecorder(wasm);
    t.equal(r.webAssembly, wasm, wasm ? 'WebAssembly build loads' : 'JS build when asked');
    r.record(0, 1.5, 1.0);
    r.record(0, 2.5, 2.0);
    r.record(3, 10, -1); // no upstream response (connect error)
    r.record(3, Number.NaN, 1); // ignored
    r.record(-1, 1, 1); // ignored
    const s = r.snapshot();
    t.same(
      s.slots.map(({ slot, count, upstreamCount, totalSumMs, upstreamSumMs }) => ({ slot, count, upstreamCount, totalSumMs, upstreamSumMs })),
      [
        { slot: 0, count: 2, upstreamCount: 2, totalSumMs: 4, upstreamSumMs: 3 },
        { slot: 3, count: 1, upstreamCount: 0, totalSumMs: 10, upstreamSumMs: 0 },
      ],
    );
    t.equal(r.snapshot().slots[0], s.slots[0], 'unchanged slots are not re-encoded');
    r.record(0, 1, 1);
    t.not(r.snapshot().slots[0], s.slots[0], 'a changed slot is');
  }
});

t.test('merge across workers: buckets, percentiles, sums', async (t) => {
  const w1 = new LatencyRecorder();
  const w2 = new LatencyRecorder(false); // a mix of builds merges the same
  // 100 requests at 0.2 ms, 100 at 3 ms, 10 at 700 ms, 1 at 20 s (over the last bound).
  for (let i = 0; i < 100; i++) w1.record(2, 0.2, 0.1);
  for (let i = 0; i < 100; i++) w2.record(2, 3, 2);
  for (let i = 0; i < 10; i++) w1.record(2, 700, 690);
  w2.record(2, 20_000, -1);
  const merged = new LatencyAggregator().update([reply(0, 11, w1), reply(1, 12, w2)], new Set([11, 12]));
  const slot = merged.get(2)!;
  t.ok(slot);
  t.equal(slot.total.count, 211);
  t.equal(slot.upstream.count, 210);
  t.equal(slot.total.sumSeconds, (100 * 0.2 + 100 * 3 + 10 * 700 + 20_000) / 1000);
  const at = (le: number): number => slot.total.buckets[BUCKET_BOUNDS_SECONDS.indexOf(le)]!;
  t.equal(at(0.0005), 100);
  t.equal(at(0.0025), 100);
  t.equal(at(0.005), 200);
  t.equal(at(0.5), 200);
  t.equal(at(1), 210);
  t.equal(at(10), 210, 'the 20 s request is only in +Inf (the count)');
  t.ok(Math.abs(slot.total.p50Ms - 3) <= 0.03, `p50 ${slot.total.p50Ms} within 1% of 3 ms`);
  t.ok(Math.abs(slot.total.p99Ms - 700) <= 7, `p99 ${slot.total.p99Ms} within 1% of 700 ms`);
  t.ok(Math.abs(slot.total.maxMs - 20_000) <= 200);
  t.equal(merged.has(0), false, 'slots without data are absent');
});

t.test('values on a bucket bound count as within it', async (t) => {
  const r = new LatencyRecorder();
  for (const s of BUCKET_BOUNDS_SECONDS) r.record(0, s * 1000, s * 1000);
  const slot = new LatencyAggregator().update([reply(0, 1, r)], new Set([1])).get(0)!;
  t.same(slot.total.buckets, BUCKET_BOUNDS_SECONDS.map((_, i) => i + 1));
});

t.test('a dead worker keeps its last snapshot; a late or missing reply keeps the previous one', async (t) => {
  const agg = new LatencyAggregator();
  const old = new LatencyRecorder();
  for (let i = 0; i < 5; i++) old.record(0, 1, 1);
  const other = new LatencyRecorder();
  other.record(0, 1, 1);
  t.equal(agg.update([reply(0, 100, old), reply(1, 200, other)], new Set([100, 200])).get(0)!.total.count, 6);

  // Worker 1 (thread 200) did not answer this round but is alive: its previous snapshot stays.
  t.equal(agg.update([reply(0, 100, old)], new Set([100, 200])).get(0)!.total.count, 6);

  // Worker 0 died (thread 100 gone) and was replaced by thread 101, which recorded 2.
  const fresh = new LatencyRecorder();
  fresh.record(0, 1, 1);
  fresh.record(0, 1, 1);
  const after = agg.update([reply(0, 101, fresh), reply(1, 200, other)], new Set([101, 200]));
  t.equal(after.get(0)!.total.count, 8, 'never goes backwards');
  t.equal(after.get(0)!.total.sumSeconds, 8 / 1000);
  t.equal(agg.update([], new Set([101, 200])).get(0)!.total.count, 8, 'retired data is counted once');
});

t.test('a slot handed to another backend starts its latency afresh (discovery reuses drained slots)', async (t) => {
  const agg = new LatencyAggregator();
  let gen = 1;
  const dead = new LatencyRecorder();
  for (let i = 0; i < 3; i++) dead.record(4, 1, 1);
  const live = new LatencyRecorder();
  for (let i = 0; i < 2; i++) live.record(4, 1, 1);
  t.equal(agg.update([reply(0, 100, dead), reply(1, 200, live)], new Set([100, 200]), () => gen).get(4)!.total.count, 5);
  // Thread 100 died: its samples are retired and still count while the slot keeps its backend.
  t.equal(agg.update([reply(1, 200, live)], new Set([200]), () => gen).get(4)!.total.count, 5);
  // The slot is reused: the live worker resets its histograms, the retired ones are dropped.
  gen = 2;
  live.reset(4);
  t.same(live.snapshot().slots, [], 'the recorder forgot the slot');
  t.equal(agg.update([reply(1, 200, live)], new Set([200]), () => gen).get(4), undefined, 'nothing left of the old backend');
  live.record(4, 2, 2);
  const now = agg.update([reply(1, 200, live)], new Set([200]), () => gen).get(4)!;
  t.equal(now.total.count, 1, 'only the new backend');
  t.equal(now.total.sumSeconds, 2 / 1000);
});
