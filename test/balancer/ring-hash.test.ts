import t from 'tap';
import { hashString, NO_HASH } from '../../src/balancer/hash.js';
import { RingHash } from '../../src/balancer/ring-hash.js';
import { C, Health } from '../../src/state/layout.js';
import { ctx, options, pool } from './fixtures/pool.js';
import { KEYS, assign, consistentHashProperties } from './fixtures/consistent-hash.js';

consistentHashProperties(t, (table, members, opts) => new RingHash(table, members, opts), 0.1);

t.test('one of N leaving moves only its keys (≈ 1/N)', async (t) => {
  const n = 10;
  const { table, members } = pool(new Array(n).fill(1));
  const before = assign(new RingHash(table, members, options()));
  const after = assign(new RingHash(table, members.filter((m) => m.slot !== 4), options()));
  let moved = 0;
  for (let k = 0; k < KEYS; k++) {
    if (before[k] === after[k]) continue;
    moved++;
    if (before[k] !== 4) t.fail(`key ${k} moved from ${before[k]} though its member stayed`);
  }
  t.ok(Math.abs(moved / KEYS - 1 / n) < 0.02, `moved ${(moved / KEYS).toFixed(3)} ≈ ${1 / n}`);
});

t.test('an unavailable owner: its keys walk to other members; nobody else moves', async (t) => {
  const n = 8;
  const { table, members } = pool(new Array(n).fill(1));
  const p = new RingHash(table, members, options());
  const before = assign(p, 1);
  table.set(C.HEALTH, 3, Health.UNHEALTHY);
  const after = assign(p, 2);
  const spread = new Set<number>();
  for (let k = 0; k < KEYS; k++) {
    if (before[k] === 3) {
      if (after[k] === 3) t.fail('still on the unavailable member');
      spread.add(after[k]!);
    } else if (before[k] !== after[k]) t.fail(`key ${k} moved needlessly`);
  }
  t.equal(spread.size, n - 1, 'orphaned keys spread over every other member');
  table.set(C.HEALTH, 3, Health.HEALTHY);
  t.same(assign(p, 3), before, 'and come back when it recovers');
});

t.test('exclude walks to the next member; no key → weighted random; 0 members → -1', async (t) => {
  const { table, members } = pool([1, 1, 1]);
  const p = new RingHash(table, members, options());
  const c = ctx(1, -1, hashString('k'));
  const owner = p.pick(c);
  c.exclude = owner;
  const second = p.pick(c);
  t.not(second, owner);
  t.ok(second >= 0);
  const counts = [0, 0, 0];
  const r = ctx(1, -1, NO_HASH);
  for (let i = 0; i < 3000; i++) {
    r.now = i + 2;
    counts[p.pick(r)]!++;
  }
  t.ok(counts.every((x) => x > 800), `no key: spread ${counts}`);
  t.equal(new RingHash(table, [], options()).pick(ctx(1, -1, 5)), -1);
});

t.test('ring size is bounded', async (t) => {
  const { table, members } = pool(new Array(200).fill(100));
  const p = new RingHash(table, members, options());
  t.ok(p.size <= 1 << 18, `size ${p.size}`);
});
