import t from 'tap';
import { recordFailure, recordLatency } from '../../src/balancer/ewma.js';
import { PeakEwmaClassic as PeakEwma } from '../../src/balancer/peak-ewma-classic.js';
import { Rng } from '../../src/balancer/rng.js';
import { C, Health } from '../../src/state/layout.js';
import { ctx, options, pool, tally } from './fixtures/pool.js';

const TAU = 10_000;

/**
 * Sequential requests on a fake clock, `stepMs` apart: pick, then record the backend's current
 * latency (or a failure). Returns picks per slot.
 */
function drive(
  policy: PeakEwma,
  table: ReturnType<typeof pool>['table'],
  clock: { now: number },
  requests: number,
  stepMs: number,
  latencyUs: (slot: number) => number,
  fails: (slot: number) => boolean = () => false,
  tau = TAU,
): number[] {
  const counts = new Array(8).fill(0);
  const c = ctx();
  for (let i = 0; i < requests; i++) {
    clock.now += stepMs;
    c.now = clock.now;
    const s = policy.pick(c);
    counts[s]++;
    if (fails(s)) recordFailure(table, s, clock.now, tau, 1_000_000);
    else recordLatency(table, s, latencyUs(s), clock.now, tau);
  }
  return counts;
}

t.test('traffic leaves a backend within a few requests of its latency jumping, and returns after it recovers', async (t) => {
  // τ = 2 s here so the whole story fits in a few thousand simulated requests, 10 ms apart.
  const tau = 2000;
  const { table, members } = pool([1, 1, 1]);
  const p = new PeakEwma(table, members, options({ ewmaDecayMs: tau, ewmaDefaultRttMs: 1 }));
  const clock = { now: 0 };
  const latency = [1000, 1000, 1000];
  const run = (n: number) => drive(p, table, clock, n, 10, (s) => latency[s]!, () => false, tau);
  let counts = run(3000);
  t.ok(counts[1] > 800, `warm: even share (${counts.slice(0, 3)})`);

  latency[1] = 50_000;
  counts = run(500);
  t.ok(counts[1] <= 2, `slow backend got ${counts[1]} of the next 500 requests (5 s)`);

  latency[1] = 1000;
  // Its 50 ms peak decays (≈ τ·ln 50 ≈ 8 s until the next probe), then each fast probe pulls the
  // estimate down further: full share again after a few τ.
  run(4000);
  counts = run(3000);
  t.ok(counts[1] > 800, `recovered backend is back in rotation (${counts.slice(0, 3)})`);
});

t.test('fast errors recorded with recordFailure push traffic away', async (t) => {
  const { table, members } = pool([1, 1, 1]);
  const p = new PeakEwma(table, members, options({ ewmaDecayMs: TAU, ewmaDefaultRttMs: 5 }));
  const clock = { now: 0 };
  drive(p, table, clock, 300, 10, () => 5000);
  // Backend 2 now answers 503 in 100 µs: by latency alone it would look 50× faster.
  const counts = drive(p, table, clock, 2000, 10, () => 5000, (s) => s === 2);
  t.ok(counts[2] <= 3, `failing backend got ${counts[2]} of 2000`);
});

t.test('in-flight counts raise the cost', async (t) => {
  const { table, members } = pool([1, 1]);
  recordLatency(table, 0, 1000, 1, TAU);
  recordLatency(table, 1, 1000, 1, TAU);
  table.acquire(0);
  const p = new PeakEwma(table, members, options({ ewmaDecayMs: TAU }));
  const counts = tally((c) => p.pick(c), 100, 1);
  t.equal(counts.get(1), 100);
});

t.test('a backend with no sample costs the default RTT while its probe is in flight', async (t) => {
  const { table, members } = pool([1, 1]);
  recordLatency(table, 0, 20_000, 1, TAU); // 20 ms measured
  table.acquire(1); // backend 1: unsampled, its probe request still out
  // cost 1 = default × (1 + 1): 5 ms → 10 < 20, 30 ms → 60 > 20
  const p = new PeakEwma(table, members, options({ ewmaDecayMs: TAU, ewmaDefaultRttMs: 5 }));
  t.equal(p.pick(ctx(2)), 1);
  const q = new PeakEwma(table, members, options({ ewmaDecayMs: TAU, ewmaDefaultRttMs: 30 }));
  t.equal(q.pick(ctx(2)), 0);
});

t.test('an unprobed backend is probed at once, then judged by its own samples', async (t) => {
  const { table, members } = pool([1, 1]);
  recordLatency(table, 0, 1000, 0, TAU); // backend 0 known at 1 ms; backend 1 never sampled
  // Even with a pessimistic default, the first draw of backend 1 (idle, unsampled) probes it.
  const p = new PeakEwma(table, members, options({ ewmaDecayMs: TAU, ewmaDefaultRttMs: 100 }));
  const clock = { now: 1 };
  const first = drive(p, table, clock, 100, 10, () => 1000);
  t.ok(first[1]! > 0, `backend 1 was probed (${first.slice(0, 2)})`);
  t.ok(table.ewmaUs(1) > 0, 'and now has a sample');
  const later = drive(p, table, clock, 2000, 10, () => 1000);
  t.ok(later[0]! > 500 && later[1]! > 500, `equal latency: both in use (${later.slice(0, 2)})`);
  // A slow backend's probe counts: once measured at 50 ms it is avoided.
  const slow = pool([1, 1]);
  recordLatency(slow.table, 0, 1000, 0, TAU);
  const r = new PeakEwma(slow.table, slow.members, options({ ewmaDecayMs: TAU }));
  const after = drive(r, slow.table, { now: 1 }, 1000, 10, (s) => (s === 1 ? 50_000 : 1000));
  t.ok(after[1]! < 50, `the slow one is avoided after its probe (${after.slice(0, 2)})`);
});

t.test('an idle backend decays back into contention', async (t) => {
  const { table, members } = pool([1, 1]);
  recordLatency(table, 0, 50_000, 0, TAU); // slow once, then idle
  recordLatency(table, 1, 5000, 4000, TAU);
  const p = new PeakEwma(table, members, options({ ewmaDecayMs: TAU }));
  t.equal(p.pick(ctx(5000)), 1, 'soon after: the slow one is avoided');
  recordLatency(table, 1, 5000, 100_000, TAU); // backend 1 keeps serving at 5 ms
  t.equal(p.pick(ctx(100_000)), 0, 'after 10 τ, 50 ms × e^-10 ≈ 2 µs: probed again');
});

t.test('property: never an unavailable backend outside panic; weights scale the cost', async (t) => {
  const rng = new Rng(8);
  for (let trial = 0; trial < 30; trial++) {
    const n = 2 + rng.below(8);
    const { table, members } = pool(new Array(n).fill(1));
    const down = rng.below(n);
    table.set(C.HEALTH, down, Health.UNHEALTHY);
    for (let s = 0; s < n; s++) recordLatency(table, s, 100 + rng.below(10_000), 1, TAU);
    const p = new PeakEwma(table, members, options({ seed: trial, panicThresholdPercent: 10 }));
    const counts = tally((c) => p.pick(c), 300, 2);
    if (counts.has(down)) t.fail(`picked unavailable slot ${down}`);
  }
  const { table, members } = pool([1, 4]);
  recordLatency(table, 0, 1000, 1, TAU);
  recordLatency(table, 1, 3000, 1, TAU); // 3 ms at weight 4 costs less than 1 ms at weight 1
  const p = new PeakEwma(table, members, options({ ewmaDecayMs: TAU }));
  t.equal(p.pick(ctx(1)), 1);
});
