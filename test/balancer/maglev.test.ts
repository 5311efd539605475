import t from 'tap';
import { hashString, NO_HASH } from '../../src/balancer/hash.js';
import { Maglev, isPrime } from '../../src/balancer/maglev.js';
import { C, Health } from '../../src/state/layout.js';
import { ctx, options, pool } from './fixtures/pool.js';
import { KEYS, assign, consistentHashProperties } from './fixtures/consistent-hash.js';

consistentHashProperties(t, (table, members, opts) => new Maglev(table, members, opts), 0.05);

t.test('table size must be a prime at least the pool size', async (t) => {
  t.ok(isPrime(65537) && isPrime(2) && isPrime(251));
  t.notOk(isPrime(65536) || isPrime(1) || isPrime(91) || isPrime(2.5));
  const { table, members } = pool([1, 1, 1]);
  t.throws(() => new Maglev(table, members, options({ maglevTableSize: 1000 })), RangeError);
  t.throws(() => new Maglev(table, members, options({ maglevTableSize: 2 })), RangeError);
  t.equal(new Maglev(table, members, options({ maglevTableSize: 251 })).lookup.length, 251);
});

t.test('every entry is filled and shares are within 1% of even', async (t) => {
  const { table, members } = pool(new Array(7).fill(1));
  const p = new Maglev(table, members, options({ maglevTableSize: 65537 }));
  const counts = new Array(7).fill(0);
  for (const m of p.lookup) counts[m]++;
  t.equal(counts.reduce((a, b) => a + b, 0), 65537);
  for (const c of counts) t.ok(Math.abs(c / (65537 / 7) - 1) < 0.01, `${c} entries`);
});

t.test('one of N leaving moves ≈ 1/N of the keys (plus a little, per the paper)', async (t) => {
  const n = 10;
  const { table, members } = pool(new Array(n).fill(1));
  const before = assign(new Maglev(table, members, options()));
  const after = assign(new Maglev(table, members.filter((m) => m.slot !== 4), options()));
  let moved = 0;
  let extra = 0;
  for (let k = 0; k < KEYS; k++) {
    if (before[k] === after[k]) continue;
    moved++;
    if (before[k] !== 4) extra++;
  }
  t.ok(Math.abs(moved / KEYS - 1 / n) < 0.02, `moved ${(moved / KEYS).toFixed(3)} ≈ ${1 / n}`);
  t.ok(extra / KEYS < 0.01, `keys of staying members moved: ${(extra / KEYS).toFixed(4)}`);
});

t.test('an unavailable owner: its keys fall through to others; nobody else moves', async (t) => {
  const n = 8;
  const { table, members } = pool(new Array(n).fill(1));
  const p = new Maglev(table, members, options());
  const before = assign(p, 1);
  table.set(C.HEALTH, 5, Health.UNHEALTHY);
  const after = assign(p, 2);
  const spread = new Set<number>();
  for (let k = 0; k < KEYS; k++) {
    if (before[k] === 5) {
      if (after[k] === 5) t.fail('still on the unavailable member');
      spread.add(after[k]!);
    } else if (before[k] !== after[k]) t.fail(`key ${k} moved needlessly`);
  }
  t.equal(spread.size, n - 1);
  table.set(C.HEALTH, 5, Health.HEALTHY);
  t.same(assign(p, 3), before);
});

t.test('exclude, no key, 0 members', async (t) => {
  const { table, members } = pool([1, 1, 1]);
  const p = new Maglev(table, members, options());
  const c = ctx(1, -1, hashString('k'));
  const owner = p.pick(c);
  c.exclude = owner;
  t.not(p.pick(c), owner);
  const counts = [0, 0, 0];
  const r = ctx(1, -1, NO_HASH);
  for (let i = 0; i < 3000; i++) {
    r.now = i + 2;
    counts[p.pick(r)]!++;
  }
  t.ok(counts.every((x) => x > 800), `no key: spread ${counts}`);
  t.equal(new Maglev(table, [], options()).pick(ctx(1, -1, 5)), -1);
});
