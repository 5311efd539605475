// Properties every policy must keep, run against each registry entry.
import t from 'tap';
import { hashString } from '../../src/balancer/hash.js';
import { createPolicy, policies } from '../../src/balancer/registry.js';
import { Rng } from '../../src/balancer/rng.js';
import type { BalancerName } from '../../src/config/types.js';
import { Admin, C, Health } from '../../src/state/layout.js';
import { ctx, options, pool } from './fixtures/pool.js';

const names = Object.keys(policies) as BalancerName[];

t.test('every BalancerName has a policy', async (t) => {
  t.same(names.sort(), [
    'least-conn',
    'least-request',
    'maglev',
    'peak-ewma',
    'peak-ewma-classic',
    'random',
    'ring-hash',
    'round-robin',
    'weighted-random',
    'weighted-round-robin',
  ]);
  t.throws(() => createPolicy('nope' as BalancerName, pool([1]).table, [], options()), TypeError);
  t.throws(() => createPolicy('toString' as BalancerName, pool([1]).table, [], options()), TypeError);
});

for (const name of names) {
  t.test(name, async (t) => {
    t.test('0 members → -1', async (t) => {
      const { table } = pool([]);
      const p = createPolicy(name, table, [], options());
      t.equal(p.pick(ctx(1)), -1);
      t.equal(p.pick(ctx(2, 3, hashString('k'))), -1);
    });

    t.test('1 member → that member, even when excluded', async (t) => {
      const { table, members } = pool([1], 7);
      const p = createPolicy(name, table, members, options());
      t.equal(p.pick(ctx(1)), 7);
      t.equal(p.pick(ctx(2, 7, hashString('k'))), 7);
    });

    t.test('many members → only members, and all of them over time', async (t) => {
      const { table, members } = pool([1, 1, 1, 1, 1, 1], 20);
      const p = createPolicy(name, table, members, options());
      const seen = new Set<number>();
      const c = ctx();
      for (let i = 0; i < 2000; i++) {
        c.now = i + 1;
        c.hash = hashString(`k${i}`);
        seen.add(p.pick(c));
      }
      t.same([...seen].sort((a, b) => a - b), [20, 21, 22, 23, 24, 25]);
    });

    t.test('exclude is honoured while others are available', async (t) => {
      const { table, members } = pool([1, 1, 1]);
      const p = createPolicy(name, table, members, options());
      const c = ctx();
      for (let i = 0; i < 1000; i++) {
        c.now = i + 1;
        c.exclude = i % 3;
        c.hash = hashString(`k${i}`);
        if (p.pick(c) === c.exclude) return t.fail(`picked excluded slot ${c.exclude}`);
      }
      t.pass();
    });

    t.test('property: never an unavailable member outside panic', async (t) => {
      const rng = new Rng(11);
      for (let trial = 0; trial < 20; trial++) {
        const n = 2 + rng.below(8);
        const { table, members } = pool(new Array(n).fill(1));
        const down = new Set<number>();
        while (down.size < Math.floor(n / 2)) down.add(rng.below(n));
        const kinds = [
          () => Health.UNHEALTHY,
          () => -1, // ejected
          () => -2, // draining
        ];
        for (const s of down) {
          const kind = kinds[rng.below(3)]!();
          if (kind === Health.UNHEALTHY) table.set(C.HEALTH, s, Health.UNHEALTHY);
          else if (kind === -1) table.set(C.EJECTED_UNTIL, s, 1_000_000);
          else table.set(C.ADMIN, s, Admin.DRAINING);
        }
        const p = createPolicy(name, table, members, options({ seed: trial }));
        const c = ctx();
        for (let i = 0; i < 300; i++) {
          c.now = i + 1;
          c.hash = hashString(`k${i}`);
          const s = p.pick(c);
          if (down.has(s) || s < 0) return t.fail(`picked slot ${s}; down: ${[...down]}`);
        }
      }
      t.pass('20 random pools');
    });

    t.test('panic: with most members unhealthy, all of them take traffic', async (t) => {
      const { table, members } = pool(new Array(6).fill(1));
      for (let s = 1; s < 6; s++) table.set(C.HEALTH, s, Health.UNHEALTHY);
      const p = createPolicy(name, table, members, options({ panicThresholdPercent: 50 }));
      const seen = new Set<number>();
      const c = ctx();
      for (let i = 0; i < 3000; i++) {
        c.now = i + 1;
        c.hash = hashString(`k${i}`);
        seen.add(p.pick(c));
      }
      t.equal(seen.size, 6);
      const off = createPolicy(name, table, members, options({ panicThresholdPercent: 0 }));
      t.equal(off.pick(ctx(1, -1, hashString('x'))), 0, 'panic off: only the healthy one');
      for (let s = 0; s < 6; s++) table.set(C.HEALTH, s, Health.UNHEALTHY);
      t.equal(off.pick(ctx(2, -1, hashString('x'))), -1, 'panic off and nothing healthy: -1');
    });

    t.test('seeded: the same seed gives the same picks', async (t) => {
      const run = () => {
        const { table, members } = pool([1, 2, 3, 1]);
        const p = createPolicy(name, table, members, options({ seed: 99 }));
        const c = ctx();
        const out: number[] = [];
        for (let i = 0; i < 200; i++) {
          c.now = i + 1;
          c.hash = i % 2 === 0 ? hashString(`k${i}`) : -1;
          out.push(p.pick(c));
        }
        return out;
      };
      t.same(run(), run());
    });
  });
}
