import t from 'tap';
import { PROBE_INTERVAL_MS, PeakEwma, TIE_BAND } from '../../src/balancer/peak-ewma.js';
import { Rng } from '../../src/balancer/rng.js';
import { CONCURRENCY_SCALE, recordService } from '../../src/balancer/service-time.js';
import { C, WEIGHT_SCALE, toStamp } from '../../src/state/layout.js';
import type { SharedTable } from '../../src/state/table.js';
import { ctx, options, pool } from './fixtures/pool.js';

/** Put a backend in a known state: latency (µs) observed at `concurrency`, `inFlight` now, sampled at `now`. */
function state(table: SharedTable, slot: number, latencyUs: number, concurrency: number, inFlight: number, now = 1): void {
  table.set(C.LB_LATENCY_US, slot, latencyUs);
  table.set(C.LB_CONCURRENCY, slot, Math.round(concurrency * CONCURRENCY_SCALE));
  table.set(C.IN_FLIGHT, slot, inFlight);
  table.set(C.LB_STAMP, slot, toStamp(now));
}

const W = WEIGHT_SCALE;
const CASES = 2000;

t.test('cost is monotone in latency and in load', async (t) => {
  const { table, members } = pool([1]);
  const p = new PeakEwma(table, members, options());
  const rng = new Rng(7);
  let bad = 0;
  for (let i = 0; i < CASES; i++) {
    const latency = 1 + rng.below(100_000);
    const conc = 1 + rng.float() * 50;
    const inFlight = rng.below(100);
    state(table, 0, latency, conc, inFlight);
    const base = p.cost(0, W);
    state(table, 0, latency + 1 + rng.below(50_000), conc, inFlight);
    if (!(p.cost(0, W) >= base)) bad++;
    state(table, 0, latency, conc, inFlight + 1 + rng.below(20));
    if (!(p.cost(0, W) >= base)) bad++;
  }
  t.equal(bad, 0, `${CASES} random states: more latency or more in flight never lowers the cost`);

  // Strictly more once the queue is past the concurrency the latency was observed at.
  state(table, 0, 10_000, 4, 4);
  const at = p.cost(0, W);
  state(table, 0, 10_000, 4, 8);
  t.ok(p.cost(0, W) > at, 'a longer queue than the observed one costs more');
});

t.test('an idle slow backend never beats an idle fast one, whatever either was observed at', async (t) => {
  const { table, members } = pool([1, 1]);
  const p = new PeakEwma(table, members, options());
  const rng = new Rng(11);
  let bad = 0;
  for (let i = 0; i < CASES; i++) {
    const fast = 1 + rng.below(50_000);
    const slow = fast + 1 + rng.below(100_000);
    state(table, 0, slow, 1 + rng.float() * 200, 0);
    state(table, 1, fast, 1 + rng.float() * 200, 0);
    if (!(p.cost(0, W) > p.cost(1, W))) bad++;
  }
  t.equal(bad, 0, `${CASES} random pairs`);
});

t.test('queueing is counted once: a busy fast backend beats an idle slow one', async (t) => {
  // The numbers: fast answers in 3 ms at 10 in flight, slow in 40 ms when alone. The
  // classic cost (latency × (in flight + 1)) makes them 33 vs 40, close enough that the slow one
  // wins as soon as its estimate decays a little; here they are 3.3 vs 40.
  const { table, members } = pool([1, 1]);
  const p = new PeakEwma(table, members, options());
  state(table, 0, 40_000, 1, 0);
  state(table, 1, 3000, 10, 10);
  t.ok(p.cost(1, W) * 10 < p.cost(0, W), `${p.cost(1, W)} vs ${p.cost(0, W)}`);
  let slow = 0;
  const c = ctx(2);
  for (let i = 0; i < 1000; i++) if (p.pick(c) === 0) slow++;
  t.equal(slow, 0, 'no pick goes to the slow backend (sampled 1 ms ago: no probe due)');
});

t.test('costs within the tie band go to fewer in flight; beyond it, to the cheaper', async (t) => {
  const { table, members } = pool([1, 1]);
  const p = new PeakEwma(table, members, options());
  const c = ctx(2);
  state(table, 0, 40_000, 8, 3);
  state(table, 1, 40_000 * (TIE_BAND - 0.05), 8, 2);
  const picks = (slot: number) => {
    let n = 0;
    for (let i = 0; i < 200; i++) if (p.pick(c) === slot) n++;
    return n;
  };
  t.equal(picks(1), 200, 'equal within estimate noise: fewer in flight');
  state(table, 1, 40_000 * (TIE_BAND + 0.2), 8, 0);
  t.equal(picks(0), 200, 'clearly slower: avoided even when idle');
  // A recovered backend (its concurrency estimate remembers the load it used to carry) alike in
  // latency to its busy peers is let back by load, not one request at a time.
  state(table, 0, 1000, 10, 10);
  state(table, 1, 1000, 6, 3);
  t.equal(picks(1), 200, 'alike latency, fewer in flight: wins');
});

t.test('probes: a stale backend gets one per interval across all workers, and only while idle', async (t) => {
  const { table, members } = pool([1, 1]);
  // Two workers over one table.
  const workers = [new PeakEwma(table, members, options({ seed: 1 })), new PeakEwma(table, members, options({ seed: 2 }))];
  let now = 1000;
  state(table, 0, 40_000, 1, 0, now); // slow, sampled now
  state(table, 1, 1000, 5, 5, now); // fast and busy
  const c = ctx(now);
  let probes = 0;
  const probeTimes: number[] = [];
  // 10 s of picks, 100 per ms between them, keeping the fast one's sample fresh.
  for (let ms = 0; ms < 10_000; ms++) {
    now++;
    c.now = now;
    table.set(C.LB_STAMP, 1, toStamp(now));
    for (let k = 0; k < 100; k++) {
      if (workers[k & 1]!.pick(c) === 0) {
        probes++;
        probeTimes.push(now);
        // The probe answers slowly at once: fresh sample, nothing left in flight.
        recordService(table, 0, 40_000, 1, now);
      }
    }
  }
  const most = 10_000 / PROBE_INTERVAL_MS;
  t.ok(probes >= most * 0.8 && probes <= most, `${probes} probes in 10 s (at most ${most})`);
  let minGap = Infinity;
  for (let i = 1; i < probeTimes.length; i++) minGap = Math.min(minGap, probeTimes[i]! - probeTimes[i - 1]!);
  t.ok(minGap >= PROBE_INTERVAL_MS, `probes at least ${PROBE_INTERVAL_MS} ms apart (closest ${minGap} ms)`);

  // While a probe is in flight, no second one goes out.
  now += 10 * PROBE_INTERVAL_MS;
  c.now = now;
  table.set(C.IN_FLIGHT, 0, 1);
  let during = 0;
  for (let k = 0; k < 1000; k++) if (workers[k & 1]!.pick(c) === 0) during++;
  t.equal(during, 0, 'no pick while its probe is in flight');
});

t.test('a backend with no sample is measured at once, one request at a time', async (t) => {
  const { table, members } = pool([1, 1, 1]);
  const p = new PeakEwma(table, members, options());
  state(table, 0, 1000, 4, 4);
  state(table, 1, 1000, 4, 4);
  const c = ctx(2);
  let first = -1;
  for (let i = 0; i < 20 && first !== 2; i++) first = p.pick(c);
  t.equal(first, 2, 'the new backend takes a request within a few picks');
  table.set(C.IN_FLIGHT, 2, 1);
  let more = 0;
  for (let i = 0; i < 200; i++) if (p.pick(c) === 2) more++;
  t.equal(more, 0, 'not another until its first answer (its default cost is 30 ms)');
});

t.test('traffic leaves a backend that slows down within a few requests, and returns after it recovers', async (t) => {
  // Sequential requests on a fake clock, 1 ms apart, each answered at once with the backend's latency.
  const { table, members } = pool([1, 1, 1]);
  const p = new PeakEwma(table, members, options());
  const latency = [1000, 1000, 1000];
  const c = ctx(0);
  let now = 0;
  const run = (n: number): number[] => {
    const counts = [0, 0, 0];
    for (let i = 0; i < n; i++) {
      c.now = ++now;
      const s = p.pick(c);
      counts[s]!++;
      recordService(table, s, latency[s]!, 1, now);
    }
    return counts;
  };
  let counts = run(3000);
  t.ok(counts[1]! > 800, `warm: even share (${counts})`);
  latency[1] = 40_000;
  const transition = run(200);
  counts = run(5000);
  t.ok(transition[1]! <= 20, `${transition[1]} of the first 200 requests after it slowed down went to it`);
  t.ok(counts[1]! <= 5000 / PROBE_INTERVAL_MS + 2, `then only probes: ${counts[1]} of 5000 in 5 s`);
  latency[1] = 1000;
  run(3000);
  counts = run(3000);
  t.ok(counts[1]! > 800, `recovered within 3 s: even share again (${counts})`);
});

t.test('weights scale the cost', async (t) => {
  const { table, members } = pool([1, 2]);
  const p = new PeakEwma(table, members, options());
  state(table, 0, 5000, 4, 4);
  state(table, 1, 5000, 4, 4);
  t.equal(p.cost(1, 2 * W), p.cost(0, W) / 2);
});
