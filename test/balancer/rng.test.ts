import t from 'tap';
import { Rng } from '../../src/balancer/rng.js';

t.test('same seed, same sequence; different seeds differ', async (t) => {
  const a = new Rng(7);
  const b = new Rng(7);
  const c = new Rng(8);
  const sa = Array.from({ length: 100 }, () => a.next());
  const sb = Array.from({ length: 100 }, () => b.next());
  const sc = Array.from({ length: 100 }, () => c.next());
  t.same(sa, sb);
  t.not(sa.join(), sc.join());
});

t.test('seed 0 works (xorshift must not start at 0)', async (t) => {
  const r = new Rng(0);
  const seen = new Set(Array.from({ length: 1000 }, () => r.next()));
  t.ok(seen.size > 990);
});

t.test('below(n) stays in range and is close to uniform', async (t) => {
  const r = new Rng(123);
  const counts = new Array(7).fill(0);
  const n = 70_000;
  for (let i = 0; i < n; i++) {
    const v = r.below(7);
    if (!(Number.isInteger(v) && v >= 0 && v < 7)) t.fail(`out of range ${v}`);
    counts[v]++;
  }
  for (const c of counts) t.ok(Math.abs(c / (n / 7) - 1) < 0.04, `${c} ≈ ${n / 7}`);
  for (let i = 0; i < 1000; i++) {
    const f = r.float();
    if (!(f >= 0 && f < 1)) t.fail(`float out of range ${f}`);
  }
});
