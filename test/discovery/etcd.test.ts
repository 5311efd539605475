// etcd discovery against a real etcd (started by the test on loopback, data in a temp dir): keys
// under the prefix appear and disappear through the watch, a key held by a lease goes when the
// lease expires, an etcd outage keeps the last known backends serving and the watch catches up
// after etcd is back, and the registration API writes to etcd with a lease per registration.

import t from 'tap';
import { startBackend, type HttpBackend } from '../helpers/backends.js';
import { etcdInstalled, startEtcd } from '../helpers/etcd.js';
import { until } from '../helpers/wait.js';
import { request, startWithAdmin } from '../admin/admin-helpers.js';

const PREFIX = '/sluice/services/api/';

t.test('etcd source', { skip: etcdInstalled() ? false : 'etcd is not installed (apt-get install -y etcd-server etcd-client)' }, async (t) => {
  const etcd = await startEtcd(t);
  const base = await startBackend(t, (_req, res) => res.end('base'));
  const one = await startBackend(t, (_req, res) => res.end('one'));
  const two = await startBackend(t, (_req, res) => res.end('two'));
  const three = await startBackend(t, (_req, res) => res.end('three'));
  etcd.ctl('put', `${PREFIX}one`, JSON.stringify({ url: one.url, weight: 1, zone: 'a' }));
  const { sluice, admin } = await startWithAdmin(t, {
    upstreams: [],
    config: {
      pools: { api: { upstreams: [base.url], etcd: { endpoints: [etcd.endpoint], prefix: PREFIX } } },
      routes: [{ match: { path_prefix: '/' }, pool: 'api' }],
    },
  });
  const members = async (): Promise<Record<string, string>> => {
    const p = JSON.parse((await request(`${admin}/api/pools`)).body);
    return Object.fromEntries(p.pools[0].members.map((m: { url: string; source: string }) => [m.url, m.source]));
  };
  const serves = async (b: HttpBackend, what: string): Promise<void> => {
    const before = b.requests.length;
    await until(what, async () => {
      await request(sluice.url);
      return b.requests.length > before;
    });
  };
  let failed = 0;
  let stopLoad = false;
  // Clients keep sending the whole time: no request may fail because of a membership change or an outage.
  const load = (async () => {
    while (!stopLoad) {
      const r = await request(sluice.url).catch(() => ({ status: 0 }));
      if (r.status !== 200) failed++;
    }
  })();

  t.same(await members(), { [base.url]: 'static', [one.url]: 'etcd' }, 'the key listed at start is a member');
  await serves(one, 'the etcd backend serves');

  etcd.ctl('put', `${PREFIX}two`, JSON.stringify({ url: two.url }));
  await serves(two, 'a key put later joins through the watch');
  etcd.ctl('del', `${PREFIX}two`);
  await until('a deleted key leaves', async () => !(two.url in (await members())));

  const lease = /lease ([0-9a-f]+) granted/.exec(etcd.ctl('lease', 'grant', '2'))![1]!;
  etcd.ctl('put', `${PREFIX}three`, JSON.stringify({ url: three.url }), '--lease', lease);
  await serves(three, 'a leased key joins');
  await until('the lease expires and its backend leaves', async () => !(three.url in (await members())), 15_000);

  // Outage: the last known backends keep serving.
  await etcd.stop();
  await sluice.waitForLog((l) => l.msg === 'etcd discovery: watch lost; keeping the last known backends until it is back', 15_000);
  t.same(await members(), { [base.url]: 'static', [one.url]: 'etcd' }, 'membership kept while etcd is down');
  await serves(one, 'the etcd backend still serves during the outage');
  // Back: a key written after the restart is seen (the watch reconnected, the prefix was listed again).
  await etcd.start();
  etcd.ctl('put', `${PREFIX}two`, JSON.stringify({ url: two.url }));
  await until('the watch is back after the restart', async () => two.url in (await members()), 30_000);
  await serves(two, 'the key written after the restart serves');

  stopLoad = true;
  await load;
  t.equal(failed, 0, 'no client request failed throughout');
});

t.test('registry writes to etcd with a lease', { skip: etcdInstalled() ? false : 'etcd is not installed' }, async (t) => {
  const etcd = await startEtcd(t);
  const base = await startBackend(t, (_req, res) => res.end('base'));
  const joined = await startBackend(t, (_req, res) => res.end('joined'));
  const { sluice, admin } = await startWithAdmin(t, {
    upstreams: [],
    config: {
      pools: { api: { upstreams: [base.url], etcd: { endpoints: [etcd.endpoint], prefix: PREFIX } } },
      routes: [{ match: { path_prefix: '/' }, pool: 'api' }],
    },
  });
  const call = (method: string, path: string, body?: unknown) =>
    request(`${admin}${path}`, { method, headers: { 'x-sluice-admin': '1' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const put = await call('PUT', '/api/registry/api', { url: joined.url, weight: 2, ttl_s: 2, id: 'joined' });
  t.equal(put.status, 200, put.body);
  t.equal(JSON.parse(put.body).store, 'etcd');
  const stored = etcd.ctl('get', `${PREFIX}joined`, '--print-value-only');
  t.same(JSON.parse(stored), { url: joined.url, weight: 2, ttl_s: 2, registered: true }, 'the key in etcd');
  await until('the registered backend serves', async () => (await request(sluice.url)).body === 'joined');
  // A heartbeat moves the key to a new lease and revokes the one it replaces.
  const leases = (): string[] => etcd.ctl('lease', 'list').split('\n').slice(1).filter((l) => l.trim() !== '');
  const before = leases();
  t.equal(before.length, 1, 'one lease per registration');
  t.equal((await call('PUT', '/api/registry/api', { url: joined.url, weight: 2, ttl_s: 2, id: 'joined' })).status, 200);
  const after = leases();
  t.equal(after.length, 1, 'still one lease after a heartbeat');
  t.not(after[0], before[0], 'a fresh one');
  const list = JSON.parse((await call('GET', '/api/registry/api')).body);
  t.same(list, { pool: 'api', store: 'etcd', registrations: [{ id: 'joined', url: joined.url, weight: 2, ttl_s: 2 }] });
  const p = JSON.parse((await call('GET', '/api/pools')).body);
  t.equal(p.pools[0].members.find((m: { url: string }) => m.url === joined.url).source, 'registry');
  // No heartbeat: the lease lapses in etcd and the backend leaves.
  await until('the lease lapses', () => etcd.ctl('get', `${PREFIX}joined`) === '', 15_000);
  await until('the backend leaves', async () => {
    const pools = JSON.parse((await call('GET', '/api/pools')).body);
    return pools.pools[0].members.length === 1;
  });
  // DELETE removes the key.
  t.equal((await call('PUT', '/api/registry/api', { url: joined.url, id: 'joined', ttl_s: 60 })).status, 200);
  t.not(etcd.ctl('get', `${PREFIX}joined`), '');
  t.equal((await call('DELETE', '/api/registry/api/joined')).status, 200);
  t.equal(etcd.ctl('get', `${PREFIX}joined`), '', 'deleted from etcd');
  t.equal((await call('DELETE', '/api/registry/api/joined')).status, 404);
  // etcd down: the API says so.
  await etcd.stop();
  const down = await call('PUT', '/api/registry/api', { url: joined.url });
  t.equal(down.status, 503);
  t.match(JSON.parse(down.body).error, /etcd is unavailable/);
});
