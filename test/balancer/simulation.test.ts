// Issue 12's scenarios in the seeded discrete-event simulation (fixtures/sim.ts): no sockets, no
// wall clock, the same numbers on every run. Backends answer after a fixed delay plus 0.25 ms per
// request already in flight to them (a fast one: 0.3 ms + queueing, ~3 ms at 10 in flight); the
// proxy's event loop stalls 50 ms every 2 s (shared CPU), which is what fooled the classic rule.

import t from 'tap';
import { type SimBackend, type SimOptions, simulate } from './fixtures/sim.js';

const PER_IN_FLIGHT_MS = 0.25;
const fast: SimBackend = { delayMs: () => 0.3, perInFlightMs: PER_IN_FLIGHT_MS };
const slow: SimBackend = { delayMs: () => 40, perInFlightMs: PER_IN_FLIGHT_MS };
/** 40 ms late for 5 s of every 15 s. */
const slowWindow = (at: number): boolean => at % 15_000 < 5_000;
const partTime: SimBackend = { delayMs: (at) => (slowWindow(at) ? 40 : 0.3), perInFlightMs: PER_IN_FLIGHT_MS };
const stalls = { stallEveryMs: 2000, stallForMs: 50 };

type Setup = Pick<SimOptions, 'policy' | 'clients' | 'workers'>;
const allFast = (s: Setup) => simulate({ ...s, ...stalls, backends: [fast, fast, fast, fast], durationMs: 8_000, warmupMs: 1_000 });
const oneSlow = (s: Setup) => simulate({ ...s, ...stalls, backends: [slow, fast, fast, fast], durationMs: 16_000, warmupMs: 1_000 });

const pct = (v: number) => `${(v * 100).toFixed(3)}%`;

t.test('one slow backend: peak-ewma keeps it under 0.3% and p99 under 1.5x all-fast', async (t) => {
  for (const [clients, workers] of [[32, 2], [8, 1], [128, 4]] as const) {
    const base = allFast({ policy: 'peak-ewma', clients, workers });
    const run = oneSlow({ policy: 'peak-ewma', clients, workers });
    const ratio = run.percentile(99) / base.percentile(99);
    t.ok(run.share(0) <= 0.003, `${clients} clients, ${workers} workers: ${pct(run.share(0))} to the slow backend`);
    t.ok(ratio <= 1.5, `${clients} clients, ${workers} workers: p99 ${ratio.toFixed(2)}x all-fast`);
  }
});

t.test('the classic rule, same runs: the slow backend reaches p99', async (t) => {
  const run = oneSlow({ policy: 'peak-ewma-classic', clients: 32, workers: 2 });
  const now = oneSlow({ policy: 'peak-ewma', clients: 32, workers: 2 });
  t.ok(run.share(0) > 0.005, `classic sends ${pct(run.share(0))}`);
  t.ok(now.share(0) * 5 < run.share(0), `peak-ewma ${pct(now.share(0))}: several times less`);
});

t.test('part-time slow: traffic leaves while it is slow and comes back when it recovers', async (t) => {
  for (const [clients, workers] of [[32, 2], [8, 1], [128, 4]] as const) {
    const run = simulate({
      policy: 'peak-ewma', clients, workers, ...stalls, backends: [partTime, fast, fast, fast],
      durationMs: 46_000, warmupMs: 1_000, window: slowWindow,
    });
    const inside = run.inWindow.reduce((a, b) => a + b, 0);
    const whileSlow = run.inWindow[0]! / inside;
    const whileFast = (run.counts[0]! - run.inWindow[0]!) / (run.total - inside);
    t.ok(whileSlow <= 0.003, `${clients}/${workers}: ${pct(whileSlow)} while slow`);
    t.ok(whileFast >= 0.2, `${clients}/${workers}: ${pct(whileFast)} while fast (25% is even)`);
  }
});

t.test('all equally slow: no herding', async (t) => {
  for (const [clients, workers] of [[32, 2], [8, 1], [128, 4]] as const) {
    const run = simulate({ policy: 'peak-ewma', clients, workers, ...stalls, backends: [slow, slow, slow, slow], durationMs: 20_000, warmupMs: 1_000 });
    const max = Math.max(...run.counts) / run.total;
    t.ok(max <= 0.3, `${clients}/${workers}: largest share ${pct(max)}`);
  }
});

t.test('the simulation is deterministic for a seed', async (t) => {
  const a = oneSlow({ policy: 'peak-ewma', clients: 16, workers: 2 });
  const b = oneSlow({ policy: 'peak-ewma', clients: 16, workers: 2 });
  t.same(a.counts, b.counts);
  t.equal(a.percentile(99), b.percentile(99));
});
