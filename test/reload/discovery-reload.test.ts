// The reloader as discovery uses it: membershipChanged() composes the pools from what the
// discovery source reports now and publishes them like a reload (logged as a membership change),
// a burst of calls while one waits its turn runs once, health checks are not rescheduled by a
// membership change, and a SIGHUP re-composes what discovery found into the reloaded file.

import t from 'tap';
import pino from 'pino';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnv } from '../../src/config/env.js';
import { withoutFile } from '../../src/config/load.js';
import type { ResolvedConfig } from '../../src/config/types.js';
import type { Backend, Upstream } from '../../src/model/upstream.js';
import { ActiveChecker, healthOptions, poolHealthOptions } from '../../src/health/active-checker.js';
import { ConfigSource } from '../../src/reload/config-source.js';
import { Reloader, type MembershipSource } from '../../src/reload/reloader.js';
import { Membership } from '../../src/state/membership.js';
import { SharedTable } from '../../src/state/table.js';

function up(port: number): Upstream {
  return { url: `http://127.0.0.1:${port}`, protocol: 'http:', host: '127.0.0.1', port, weight: 1, source: 'dns' };
}

function config(): ResolvedConfig {
  const r = parseEnv({ SLUICE_UPSTREAMS: 'http://127.0.0.1:1', SLUICE_HEALTH_CHECK: 'off' });
  if (!r.ok) throw new Error('env');
  return withoutFile(r.config);
}

/** A stand-in for the coordinator: the pool "default" gets `found` after its static list. */
class FakeDiscovery implements MembershipSource {
  found: Upstream[] = [];
  configured = 0;
  composed = 0;
  configure(): void {
    this.configured++;
  }
  compose(c: ResolvedConfig): ResolvedConfig {
    this.composed++;
    return { ...c, pools: c.pools.map((p) => ({ ...p, upstreams: [...p.upstreams, ...this.found] })) };
  }
}

t.test('membershipChanged publishes what discovery found, once per burst', async (t) => {
  const initial = config();
  const table = new SharedTable();
  const membership = new Membership(table);
  const logs: { msg: string; [k: string]: unknown }[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const checker = new ActiveChecker(table, healthOptions(initial), log, poolHealthOptions(initial.pools));
  t.teardown(() => checker.stop());
  const backends = membership.assignPools(initial.pools);
  checker.track(backends);
  const published: string[][] = [];
  const workers = { setConfig: (_c: ResolvedConfig, bs: Backend[]) => void published.push(bs.map((b) => b.upstream.url)) };
  let reconfigured = 0;
  const counted = new Proxy(checker, {
    get: (target, prop, receiver) => {
      if (prop === 'reconfigure') return (...args: Parameters<ActiveChecker['reconfigure']>) => (reconfigured++, target.reconfigure(...args));
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const dir = mkdtempSync(join(tmpdir(), 'sluice-discovery-reload-'));
  const file = join(dir, 'sluice.env');
  writeFileSync(file, 'SLUICE_UPSTREAMS=http://127.0.0.1:1\nSLUICE_HEALTH_CHECK=off\n');
  const reloader = new Reloader(new ConfigSource({}, file), { config: initial, backends, demo: null }, { membership, workers, checker: counted, table, log });
  const discovery = new FakeDiscovery();
  reloader.useDiscovery(discovery);

  discovery.found = [up(2)];
  const calls = [reloader.membershipChanged(), reloader.membershipChanged(), reloader.membershipChanged()];
  t.equal(calls[0], calls[1], 'calls made while one waits share it');
  const results = await Promise.all(calls);
  t.ok(results.every((r) => r.ok));
  t.same(published, [['http://127.0.0.1:1', 'http://127.0.0.1:2']], 'published once, static backend first');
  t.equal(discovery.composed, 1);
  const change = logs.find((l) => l.msg === 'membership changed');
  t.same(change?.added, ['default http://127.0.0.1:2 (dns)']);
  t.notOk(logs.some((l) => l.msg === 'configuration reloaded'), 'not logged as a reload');
  t.equal(reconfigured, 0, 'health checks not reconfigured by a membership change');

  discovery.found = [up(3)];
  await reloader.membershipChanged();
  t.same(published.at(-1), ['http://127.0.0.1:1', 'http://127.0.0.1:3']);
  t.same(logs.filter((l) => l.msg === 'membership changed').at(-1)?.removed, ['default http://127.0.0.1:2']);
  const unchanged = published.length;
  await reloader.membershipChanged();
  t.equal(published.length, unchanged, 'nothing new found: nothing published');

  // SIGHUP: the file is re-read, discovery re-configured, and its backends composed in.
  writeFileSync(file, 'SLUICE_UPSTREAMS=http://127.0.0.1:1\nSLUICE_HEALTH_CHECK=off\nSLUICE_BALANCER=round-robin\n');
  const r = await reloader.reload();
  t.ok(r.ok);
  t.equal(discovery.configured, 1, 'discovery follows the reloaded file');
  t.same(published.at(-1), ['http://127.0.0.1:1', 'http://127.0.0.1:3'], 'what discovery found is kept');
  t.equal(reloader.config.pools[0]!.balancer, 'round-robin');
});
