// The coordinator's composition, with fake sources: a pool's backends are its static upstreams,
// then each source's latest list, then in-memory registrations, one per URL (the first to name it
// wins); a source that cannot tell (null) keeps its last list; priority groups follow health; and
// a burst of reports is applied once (servedMembers is the pure part).

import t from 'tap';
import pino from 'pino';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiscoveryCoordinator, servedMembers } from '../../src/discovery/coordinator.js';
import type { Discovered } from '../../src/discovery/source.js';
import { withoutFile } from '../../src/config/load.js';
import { parseEnv } from '../../src/config/env.js';
import type { ResolvedConfig } from '../../src/config/types.js';
import type { Upstream } from '../../src/model/upstream.js';
import { until } from '../helpers/wait.js';

function up(port: number, weight = 1, source?: Upstream['source']): Upstream {
  return { url: `http://127.0.0.1:${port}`, protocol: 'http:', host: '127.0.0.1', port, weight, ...(source ? { source } : {}) };
}

/** The default config with its pool "default" discovering through one file source (a fake one is fed below). */
function config(file: string, upstreams: Upstream[] = []): ResolvedConfig {
  const parsed = parseEnv({ SLUICE_UPSTREAMS: 'http://127.0.0.1:1' });
  if (!parsed.ok) throw new Error('env');
  const base = withoutFile(parsed.config);
  return { ...base, pools: [{ ...base.pools[0]!, upstreams, discovery: { sources: [{ kind: 'file', path: file }], registry: true } }] };
}

t.test('composition: static first, sources, registrations; one per URL', async (t) => {
  const health = new Map<string, string>();
  const c = new DiscoveryCoordinator({ log: pino({ level: 'silent' }), dnsServers: [], health: () => health });
  let applied = 0;
  c.onChange(() => applied++);
  t.teardown(() => c.stop());
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-coord-')), 'b.json');
  writeFileSync(file, JSON.stringify([{ url: 'http://127.0.0.1:2', weight: 5 }, { url: 'http://127.0.0.1:3' }]));
  const base = config(file, [up(2, 1)]);
  c.configure(base);
  t.ok(await c.initial(5000), 'the file source answered');
  await c.registry.register('default', { url: 'http://127.0.0.1:4', ttl_s: 60 });
  await c.registry.register('default', { url: 'http://127.0.0.1:3', weight: 9, ttl_s: 60 });
  const pool = c.compose(base).pools[0]!;
  t.same(
    pool.upstreams.map((u) => [u.url, u.weight, u.source ?? 'static']),
    [
      ['http://127.0.0.1:2', 1, 'static'],
      ['http://127.0.0.1:3', 1, 'file'],
      ['http://127.0.0.1:4', 1, 'registry'],
    ],
    'the static list wins over the file, the file over a registration',
  );
  await until('one apply for the burst of registrations', () => applied >= 1);
  t.equal(applied, 1, 'applied once');
});

t.test('priority groups follow health', async (t) => {
  const health = new Map<string, string>();
  const found: Discovered[] = [
    { upstream: up(10, 1, 'dns'), priority: 1 },
    { upstream: up(11, 1, 'dns'), priority: 1 },
    { upstream: up(20, 1, 'dns'), priority: 2 },
    { upstream: up(30, 1, 'dns'), priority: 3 },
    { upstream: up(11, 7, 'dns'), priority: 3 },
  ];
  const ports = (): number[] => servedMembers('api', found, health).map((u) => u.port);
  t.same(ports(), [10, 11], 'the lowest priority group only (a URL twice: its first entry)');
  health.set('api\0http://127.0.0.1:10', 'unhealthy');
  t.same(ports(), [10, 11], 'one member down: the group still serves');
  health.set('api\0http://127.0.0.1:11', 'pending');
  t.same(ports(), [10, 11], 'a member not checked yet is not known to be down');
  health.set('api\0http://127.0.0.1:11', 'unhealthy');
  t.same(ports(), [10, 11, 20], 'all down: the next group joins');
  health.set('api\0http://127.0.0.1:20', 'unhealthy');
  t.same(ports(), [10, 11, 20, 30], 'and the next');
  health.set('api\0http://127.0.0.1:11', 'healthy');
  t.same(ports(), [10, 11], 'back to the first group once one of it is up');
});
