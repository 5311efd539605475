// Applying a reloaded configuration, with a real membership and health checker and recorded
// worker messages: what is published, in which order, and what is refused or kept.

import t, { type Test } from 'tap';
import net from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseEnv } from '../../src/config/env.js';
import { withoutFile } from '../../src/config/load.js';
import type { ResolvedConfig } from '../../src/config/types.js';
import { resolvePool } from '../../src/model/pool.js';
import type { Backend } from '../../src/model/upstream.js';
import { ActiveChecker, healthOptions, poolHealthOptions } from '../../src/health/active-checker.js';
import { ConfigSource } from '../../src/reload/config-source.js';
import { Reloader } from '../../src/reload/reloader.js';
import { C, Health, routeCell } from '../../src/state/layout.js';
import { Membership } from '../../src/state/membership.js';
import { SharedTable } from '../../src/state/table.js';

function config(env: Record<string, string>): ResolvedConfig {
  const r = parseEnv({ SLUICE_WORKERS: '2', SLUICE_HEALTH_INTERVAL_MS: '50', ...env });
  if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('; '));
  return withoutFile(r.config);
}

/** `base` with these pools (name → upstream URLs and overrides) and routes, as a file would give. */
function routed(
  base: ResolvedConfig,
  pools: Record<string, { urls: string[]; overrides?: Parameters<typeof resolvePool>[0]['overrides'] }>,
  routes: ResolvedConfig['routes'],
): ResolvedConfig {
  const resolved = Object.entries(pools).map(([name, p]) =>
    resolvePool({ name, upstreams: p.urls.map((url) => ({ ...base.upstreams[0]!, ...upstreamOf(url) })), overrides: p.overrides ?? {} }, base),
  );
  return { ...base, configFile: '/etc/sluice/test.yaml', upstreams: [], pools: resolved, routes };
}

function upstreamOf(url: string) {
  const u = new URL(url);
  return { url, protocol: 'http:' as const, host: u.hostname, port: Number(u.port), weight: 1 };
}

async function listener(t: Test): Promise<string> {
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

interface Published {
  config: ResolvedConfig;
  urls: string[];
  pools: string[];
  /** HEALTH and WEIGHT of each published slot when it was published. */
  health: number[];
  weight: number[];
}

async function setup(t: Test, initial: ResolvedConfig, options: { file?: string } = {}) {
  const table = new SharedTable();
  const membership = new Membership(table);
  const logs: { msg: string; [k: string]: unknown }[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const checker = new ActiveChecker(table, healthOptions(initial), log, poolHealthOptions(initial.pools));
  t.teardown(() => checker.stop());
  const backends = membership.assignPools(initial.pools);
  checker.track(backends);
  await checker.settled(backends.map((b) => b.slot), 2000);
  const published: Published[] = [];
  const workers = {
    setConfig(c: ResolvedConfig, bs: Backend[]) {
      published.push({
        config: c,
        urls: bs.map((b) => b.upstream.url),
        pools: bs.map((b) => b.pool),
        health: bs.map((b) => table.get(C.HEALTH, b.slot)),
        weight: bs.map((b) => table.get(C.WEIGHT, b.slot)),
      });
    },
  };
  const source = new ConfigSource({}, options.file ?? '');
  const reloader = new Reloader(source, { config: initial, backends, demo: null }, { membership, workers, checker, table, log });
  return { table, reloader, published, logs, checker };
}

t.test('nothing changed: nothing is published', async (t) => {
  const a = await listener(t);
  const { reloader, published } = await setup(t, config({ SLUICE_UPSTREAMS: a }));
  t.same(await reloader.apply(config({ SLUICE_UPSTREAMS: a })), { ok: true, changed: [], restartRequired: [] });
  t.same(published, []);
});

t.test('a policy change is published to the workers with the same membership', async (t) => {
  const a = await listener(t);
  const { reloader, published } = await setup(t, config({ SLUICE_UPSTREAMS: a }));
  const r = await reloader.apply(config({ SLUICE_UPSTREAMS: a, SLUICE_BALANCER: 'round-robin', SLUICE_RETRIES: '2' }));
  t.same(r, { ok: true, changed: ['SLUICE_BALANCER', 'SLUICE_RETRIES'], restartRequired: [] });
  t.equal(published.length, 1);
  t.match(published[0], { config: { balancer: 'round-robin', retries: 2 }, urls: [a] });
  t.equal(reloader.config.balancer, 'round-robin');
});

t.test('listen address and worker count keep their running values and are reported', async (t) => {
  const a = await listener(t);
  const { reloader, published, logs } = await setup(t, config({ SLUICE_UPSTREAMS: a, SLUICE_LISTEN: '127.0.0.1:8080' }));
  const r = await reloader.apply(config({ SLUICE_UPSTREAMS: a, SLUICE_LISTEN: '127.0.0.1:9090', SLUICE_WORKERS: '3', SLUICE_DRAIN_TIMEOUT_MS: '5' }));
  t.same(r, { ok: true, changed: ['SLUICE_DRAIN_TIMEOUT_MS'], restartRequired: ['SLUICE_LISTEN', 'SLUICE_WORKERS'] });
  t.match(published[0]!.config, { listen: { port: 8080 }, workers: 2, drainTimeoutMs: 5 });
  t.match(logs.find((l) => l.level === 40), { variables: ['SLUICE_LISTEN', 'SLUICE_WORKERS'] });
});

t.test('swapping backends with checks on: new ones join, pass, and only then the old ones leave', async (t) => {
  const [a, b, c] = [await listener(t), await listener(t), await listener(t)];
  const { reloader, published } = await setup(t, config({ SLUICE_UPSTREAMS: `${a},${b}` }));
  const r = await reloader.apply(config({ SLUICE_UPSTREAMS: `${b},${c}` }));
  t.match(r, { ok: true, changed: ['SLUICE_UPSTREAMS'] });
  t.equal(published.length, 2);
  t.same(published[0]!.urls, [b, c, a], 'step 1: the new backend joins beside the old');
  t.equal(published[0]!.health[1], Health.UNHEALTHY, 'out of rotation until it passes');
  t.same(published[0]!.weight.map((w) => w > 0), [true, false, true], 'held at weight 0: two of three up is not panic material');
  t.same(published[1]!.urls, [b, c], 'step 2: the old one leaves');
  t.same(published[1]!.health, [Health.HEALTHY, Health.HEALTHY], 'by then the new one has passed');
  t.ok(published[1]!.weight.every((w) => w > 0), 'with its weight back');
});

t.test('adding only, or checks off: one step', async (t) => {
  const [a, b] = [await listener(t), await listener(t)];
  const on = await setup(t, config({ SLUICE_UPSTREAMS: a }));
  await on.reloader.apply(config({ SLUICE_UPSTREAMS: `${a},${b}` }));
  t.equal(on.published.length, 1);
  t.same(on.published[0]!.health, [Health.HEALTHY, Health.UNHEALTHY], 'the new one joins when it passes');

  const off = await setup(t, config({ SLUICE_UPSTREAMS: a, SLUICE_HEALTH_CHECK: 'off' }));
  await off.reloader.apply(config({ SLUICE_UPSTREAMS: b, SLUICE_HEALTH_CHECK: 'off' }));
  t.equal(off.published.length, 1);
  t.same(off.published[0]!.urls, [b]);
  t.same(off.published[0]!.health, [Health.UNKNOWN]);
});

t.test('an empty upstream list is refused, except in demo mode where the demo pool stays', async (t) => {
  const a = await listener(t);
  const real = await setup(t, config({ SLUICE_UPSTREAMS: a }));
  t.match(await real.reloader.apply(config({})), { ok: false, reason: /SLUICE_UPSTREAMS is empty/ });
  t.same(real.published, []);

  const demo = await setup(t, config({ SLUICE_UPSTREAMS: a }));
  // In demo mode the running pool "default" holds the demo backends, not the configuration's.
  const demoUpstreams = config({ SLUICE_UPSTREAMS: a }).upstreams;
  const running = { ...config({}), pools: config({ SLUICE_UPSTREAMS: a }).pools };
  const demoReloader = new Reloader(new ConfigSource({}, ''), { config: running, backends: [], demo: demoUpstreams }, {
    membership: { assignPools: () => t.fail('membership must not change') as never },
    workers: { setConfig: (c) => demo.published.push({ config: c, urls: [], pools: [], health: [], weight: [] }) },
    checker: demo.checker,
    table: demo.table,
    log: pino({ level: 'silent' }),
  });
  t.same(await demoReloader.apply(config({ SLUICE_BALANCER: 'random' })), { ok: true, changed: ['SLUICE_BALANCER'], restartRequired: [] });
  t.same(demo.published.at(-1)!.config.pools[0]!.upstreams, demoUpstreams, 'the demo backends stay the pool default');
});

t.test('reload(): an invalid file is refused and the running configuration kept', async (t) => {
  const a = await listener(t);
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-rl-')), 'sluice.env');
  writeFileSync(file, `SLUICE_UPSTREAMS=${a}\n`);
  const { reloader, published, logs } = await setup(t, config({ SLUICE_UPSTREAMS: a }), { file });
  writeFileSync(file, `SLUICE_UPSTREAMS=${a}\nSLUICE_BALANCER=fastest\n`);
  t.match(await reloader.reload(), { ok: false, reason: /SLUICE_BALANCER="fastest": expected one of/ });
  t.same(published, []);
  t.equal(reloader.config.balancer, 'peak-ewma');
  t.ok(logs.some((l) => l.msg === 'reload refused: the new configuration is invalid; the running one is kept'));

  writeFileSync(file, `SLUICE_UPSTREAMS=${a}\nSLUICE_BALANCER=random\n`);
  t.match(await reloader.reload(), { ok: true, changed: ['SLUICE_BALANCER'] });
});

t.test('reload() without SLUICE_ENV_FILE or SLUICE_CONFIG changes nothing and says why', async (t) => {
  const a = await listener(t);
  const { reloader, published } = await setup(t, config({ SLUICE_UPSTREAMS: a }));
  t.match(await reloader.reload(), { ok: false, reason: /neither SLUICE_ENV_FILE nor SLUICE_CONFIG is set/ });
  t.same(published, []);
});

t.test('reloads run one at a time, in order', async (t) => {
  const [a, b, c] = [await listener(t), await listener(t), await listener(t)];
  const { reloader, published } = await setup(t, config({ SLUICE_UPSTREAMS: a }));
  const first = reloader.apply(config({ SLUICE_UPSTREAMS: b }));
  const second = reloader.apply(config({ SLUICE_UPSTREAMS: c }));
  await Promise.all([first, second]);
  t.same(
    published.map((p) => p.urls),
    [[b, a], [b], [c, b], [c]],
    'the second starts after the first finished both of its steps',
  );
});

t.test('pools: an unchanged pool keeps its slots; a route-only edit is reported and zeroes the hit counters', async (t) => {
  const [a, b] = [await listener(t), await listener(t)];
  const base = config({});
  const routes1 = [{ name: 'api', match: { pathPrefix: '/api' }, action: { kind: 'pool' as const, pool: 'api' } }];
  const initial = routed(base, { api: { urls: [a] }, web: { urls: [b] } }, routes1);
  const { reloader, published, table } = await setup(t, initial);
  const before = reloader.backends.map((x) => [x.pool, x.slot]);
  Atomics.store(table.words, routeCell(0), 42);

  const same = await reloader.apply(routed(base, { api: { urls: [a] }, web: { urls: [b] } }, routes1));
  t.same(same, { ok: true, changed: [], restartRequired: [] }, 'the same file again: unchanged');
  t.equal(table.routeHits(0), 42, 'counts kept when the routes did not change');

  const routes2 = [{ name: 'web', match: {}, action: { kind: 'pool' as const, pool: 'web' } }];
  const r = await reloader.apply(routed(base, { api: { urls: [a] }, web: { urls: [b] } }, routes2));
  t.same(r, { ok: true, changed: ['routes'], restartRequired: [] }, 'a route-only edit is a change');
  t.equal(published.length, 1, 'one message carries the new table');
  t.same(published[0]!.config.routes, routes2);
  t.same(published[0]!.pools, ['api', 'web'], 'every pool\'s backends travel with it');
  t.same(reloader.backends.map((x) => [x.pool, x.slot]), before, 'same slots');
  t.equal(table.routeHits(0), 0, 'hit counters zeroed with the new table');
});

t.test('pools: a setting of one pool changes only that pool; the same address in two pools is two slots', async (t) => {
  const a = await listener(t);
  const base = config({});
  const routes = [{ name: 'r', match: {}, action: { kind: 'pool' as const, pool: 'one' } }];
  const initial = routed(base, { one: { urls: [a] }, two: { urls: [a] } }, routes);
  const { reloader, published } = await setup(t, initial);
  t.equal(new Set(reloader.backends.map((x) => x.slot)).size, 2, 'two slots for one address');
  const r = await reloader.apply(routed(base, { one: { urls: [a] }, two: { urls: [a], overrides: { balancer: 'random' } } }, routes));
  t.same(r, { ok: true, changed: ['pools.two'], restartRequired: [] });
  t.equal(published.length, 1);
  t.equal(published[0]!.config.pools[1]!.balancer, 'random');
});

t.test('pools: a new checked pool is checked before the table that routes to it goes out', async (t) => {
  const [a, b] = [await listener(t), await listener(t)];
  const base = config({});
  const initial = routed(base, { old: { urls: [a] } }, [{ name: 'r', match: {}, action: { kind: 'pool' as const, pool: 'old' } }]);
  const { reloader, published } = await setup(t, initial);
  const next = routed(base, { fresh: { urls: [b] } }, [{ name: 'r', match: {}, action: { kind: 'pool' as const, pool: 'fresh' } }]);
  const r = await reloader.apply(next);
  t.match(r, { ok: true, changed: ['pools.fresh', 'pools.old', 'routes'] });
  t.equal(published.length, 1, 'the workers keep the running table while the new pool is checked');
  t.same(published[0]!.config.routes, next.routes, 'then the new table goes out');
  t.same(published[0]!.pools, ['fresh']);
  t.same(published[0]!.health, [Health.HEALTHY], 'its backend passed its first check before it');
});

t.test('pools: health settings are per pool', async (t) => {
  const [a, b] = [await listener(t), await listener(t)];
  const base = config({});
  const initial = routed(base, { on: { urls: [a] }, off: { urls: [b], overrides: { healthCheck: 'off' } } }, [
    { name: 'r', match: {}, action: { kind: 'pool' as const, pool: 'on' } },
  ]);
  const { reloader, checker, table } = await setup(t, initial);
  const byPool = new Map(checker.snapshot().map((h) => [h.pool, h]));
  t.match(byPool.get('on'), { mode: 'tcp', state: 'healthy' });
  t.match(byPool.get('off'), { mode: 'off', state: 'unchecked' });
  const slotOff = reloader.backends.find((x) => x.pool === 'off')!.slot;
  t.equal(table.get(C.HEALTH, slotOff), Health.UNKNOWN);
  // Turn checks on for that pool only: it is probed, the other keeps its state.
  await reloader.apply(routed(base, { on: { urls: [a] }, off: { urls: [b] } }, initial.routes));
  await checker.settled([slotOff], 2000);
  t.match(new Map(checker.snapshot().map((h) => [h.pool, h])).get('off'), { mode: 'tcp' });
});
