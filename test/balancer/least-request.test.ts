import t from 'tap';
import { LeastRequest } from '../../src/balancer/least-request.js';
import { Rng } from '../../src/balancer/rng.js';
import { C, Health } from '../../src/state/layout.js';
import { ctx, options, pool, tally } from './fixtures/pool.js';

t.test('P2C draws two distinct members: of two, the less loaded always wins', async (t) => {
  const { table, members } = pool([1, 1]);
  table.acquire(0);
  const lr = new LeastRequest(table, members, options());
  const counts = tally((c) => lr.pick(c), 1000);
  t.equal(counts.get(1), 1000);
});

t.test('P2C: the most loaded of N is never picked; load spreads over the rest', async (t) => {
  const { table, members } = pool([1, 1, 1, 1]);
  for (let i = 0; i < 5; i++) table.acquire(3);
  const lr = new LeastRequest(table, members, options());
  const counts = tally((c) => lr.pick(c), 30_000);
  t.equal(counts.get(3), undefined);
  for (const s of [0, 1, 2]) t.ok(Math.abs(counts.get(s)! / 10_000 - 1) < 0.05, `slot ${s}: ${counts.get(s)}`);
});

t.test('property: P2C never returns an unavailable member outside panic', async (t) => {
  const rng = new Rng(5);
  for (let trial = 0; trial < 50; trial++) {
    const n = 2 + rng.below(10);
    const { table, members } = pool(new Array(n).fill(1));
    const down = new Set<number>();
    // Keep at least half up so the 50% panic threshold is not crossed.
    while (down.size < Math.floor(n / 2)) down.add(rng.below(n));
    for (const s of down) table.set(C.HEALTH, s, Health.UNHEALTHY);
    for (let s = 0; s < n; s++) for (let k = rng.below(4); k > 0; k--) table.acquire(s);
    const lr = new LeastRequest(table, members, options({ seed: trial }));
    const counts = tally((c) => lr.pick(c), 500);
    for (const s of down) if (counts.has(s)) t.fail(`picked unavailable slot ${s}`);
  }
  t.pass('50 random pools');
});

t.test('panic: with most members down, traffic spreads over all', async (t) => {
  const { table, members } = pool(new Array(10).fill(1));
  for (let s = 0; s < 8; s++) table.set(C.HEALTH, s, Health.UNHEALTHY);
  const lr = new LeastRequest(table, members, options({ panicThresholdPercent: 50 }));
  const counts = tally((c) => lr.pick(c), 20_000);
  t.equal(counts.size, 10);
  for (let s = 0; s < 10; s++) t.ok(Math.abs(counts.get(s)! / 2000 - 1) < 0.1, `slot ${s}: ${counts.get(s)}`);
});

t.test('property: unequal weights at zero load → shares follow weights within 1.5 points', async (t) => {
  const rng = new Rng(6);
  for (let trial = 0; trial < 10; trial++) {
    const weights = Array.from({ length: 2 + rng.below(5) }, () => 1 + rng.below(9));
    if (weights.every((w) => w === weights[0])) weights[0]! += 1;
    const { table, members } = pool(weights);
    const lr = new LeastRequest(table, members, options({ seed: trial }));
    const total = weights.reduce((a, b) => a + b, 0);
    const n = 100_000;
    const counts = tally((c) => lr.pick(c), n);
    for (let s = 0; s < weights.length; s++) {
      const share = (counts.get(s) ?? 0) / n;
      if (Math.abs(share - weights[s]! / total) > 0.015) t.fail(`weights ${weights}: slot ${s} share ${share}`);
    }
  }
  t.pass('10 random weight sets');
});

t.test("unequal weights: Envoy's weight / (in_flight + 1)^bias", async (t) => {
  const { table, members } = pool([2, 1]);
  for (let i = 0; i < 3; i++) table.acquire(0); // 2/4 = 0.5 against 1/1
  const n = 100_000;
  const lr1 = new LeastRequest(table, members, options({ leastRequestBias: 1 }));
  const s1 = tally((c) => lr1.pick(c), n).get(0)! / n;
  t.ok(Math.abs(s1 - 0.5 / 1.5) < 0.01, `bias 1: ${s1.toFixed(3)} ≈ 0.333`);
  const lr0 = new LeastRequest(table, members, options({ leastRequestBias: 0 }));
  const s0 = tally((c) => lr0.pick(c), n).get(0)! / n;
  t.ok(Math.abs(s0 - 2 / 3) < 0.01, `bias 0 is plain weighted: ${s0.toFixed(3)} ≈ 0.667`);
  const lr2 = new LeastRequest(table, members, options({ leastRequestBias: 2 }));
  const s2 = tally((c) => lr2.pick(c), n).get(0)! / n;
  t.ok(Math.abs(s2 - 0.125 / 1.125) < 0.01, `bias 2: ${s2.toFixed(3)} ≈ 0.111`);
});

/** Equally fast backends, 3 new requests per tick, each lasting 20 ticks: shares after warm-up. */
function simulate(bias: number, weights: number[]): number[] {
  const { table, members } = pool(weights);
  const lr = new LeastRequest(table, members, options({ leastRequestBias: bias }));
  const ends: number[][] = Array.from({ length: 20 }, () => []);
  const counts = weights.map(() => 0);
  const c = ctx();
  for (let tick = 0; tick < 60_000; tick++) {
    for (const s of ends[tick % 20]!) table.release(s);
    ends[tick % 20] = [];
    c.now = tick + 1;
    for (let k = 0; k < 3; k++) {
      const s = lr.pick(c);
      table.acquire(s);
      ends[tick % 20]!.push(s);
      if (tick >= 1000) counts[s]!++;
    }
  }
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.map((n) => n / total);
}

t.test('under sustained load: bias 0 keeps weight shares, bias 1 settles near √weight', async (t) => {
  const weights = [1, 2, 3];
  const exact = simulate(0, weights);
  weights.forEach((w, s) => t.ok(Math.abs(exact[s]! - w / 6) < 0.02, `bias 0 slot ${s}: ${exact[s]!.toFixed(3)} ≈ ${(w / 6).toFixed(3)}`));
  const roots = weights.map(Math.sqrt);
  const rootSum = roots.reduce((a, b) => a + b, 0);
  const loaded = simulate(1, weights);
  roots.forEach((r, s) => t.ok(Math.abs(loaded[s]! - r / rootSum) < 0.02, `bias 1 slot ${s}: ${loaded[s]!.toFixed(3)} ≈ ${(r / rootSum).toFixed(3)}`));
  t.ok(loaded[0]! < loaded[1]! && loaded[1]! < loaded[2]!, 'heavier still gets more');
});
