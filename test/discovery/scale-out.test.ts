// Scale-out: three Sluice processes (each stands for a host, on its own ports) on one real etcd.
// Backends are registered and deregistered through the API of one of them; clients keep sending to
// all three the whole time. A registered backend is served by all three within 1 s of the PUT's
// answer, a deregistered one gets no request any host sent more than 1 s after the DELETE's
// answer, and no client request fails. Times are taken where the requests land (the backend).

import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startBackend } from '../helpers/backends.js';
import { etcdInstalled, startEtcd } from '../helpers/etcd.js';
import { until } from '../helpers/wait.js';
import { request, startWithAdmin, type WithAdmin } from '../admin/admin-helpers.js';
import type { Teardown } from '../helpers/sluice.js';

const PREFIX = '/sluice/services/api/';
const HOSTS = 3;
/** The convergence bound. */
const CONVERGE_MS = 1000;

interface Recorder {
  url: string;
  /** Arrival time of each request, by the Sluice host that sent it (the x-from header). */
  arrivals: Map<string, number[]>;
}

async function recorder(t: Teardown, label: string): Promise<Recorder> {
  const arrivals = new Map<string, number[]>();
  const server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    const from = String(req.headers['x-from']);
    const list = arrivals.get(from) ?? [];
    list.push(Date.now());
    arrivals.set(from, list);
    res.end(label);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, arrivals };
}

t.test('three hosts on one etcd converge within 1 s with zero failed requests', { skip: etcdInstalled() ? false : 'etcd is not installed' }, async (t) => {
  const etcd = await startEtcd(t);
  const base = await startBackend(t, (_req, res) => res.end('base'));
  const hosts: WithAdmin[] = [];
  for (let i = 0; i < HOSTS; i++) {
    hosts.push(
      await startWithAdmin(t, {
        upstreams: [],
        workers: 2,
        config: {
          pools: { api: { upstreams: [base.url], etcd: { endpoints: [etcd.endpoint], prefix: PREFIX } } },
          routes: [{ match: { path_prefix: '/' }, pool: 'api' }],
        },
      }),
    );
  }
  let failed = 0;
  let sent = 0;
  let stop = false;
  const loops = hosts.flatMap((h, i) =>
    [0, 1].map(async () => {
      while (!stop) {
        const r = await request(h.sluice.url, { headers: { 'x-from': `host${i}` } }).catch((err: Error) => ({ status: 0, body: err.message }));
        sent++;
        if (r.status !== 200) failed++;
      }
    }),
  );
  const api = (method: string, path: string, body?: unknown) =>
    request(`${hosts[0]!.admin}${path}`, { method, headers: { 'x-sluice-admin': '1' }, body: body === undefined ? undefined : JSON.stringify(body) });

  for (let round = 0; round < 3; round++) {
    const b = await recorder(t, `r${round}`);
    const put = await api('PUT', '/api/registry/api', { url: b.url, id: `r${round}`, ttl_s: 30 });
    t.equal(put.status, 200, put.body);
    const registered = Date.now();
    await until(`round ${round}: every host serves the new backend`, () => hosts.every((_, i) => (b.arrivals.get(`host${i}`)?.length ?? 0) > 0));
    for (let i = 0; i < HOSTS; i++) {
      const first = b.arrivals.get(`host${i}`)![0]! - registered;
      t.ok(first <= CONVERGE_MS, `round ${round}: host${i} served it ${first} ms after the PUT answered`);
    }
    await until(`round ${round}: a few more requests`, () => hosts.every((_, i) => (b.arrivals.get(`host${i}`)?.length ?? 0) > 3));
    const del = await api('DELETE', `/api/registry/api/r${round}`);
    t.equal(del.status, 200, del.body);
    const deleted = Date.now();
    // Every host's membership without it, then nothing more may arrive.
    await until(`round ${round}: every host dropped it`, async () => {
      for (const h of hosts) {
        const p = JSON.parse((await request(`${h.admin}/api/pools`)).body);
        if (p.pools[0].members.some((m: { url: string }) => m.url === b.url)) return false;
      }
      return true;
    });
    const settled = sent;
    await until('more requests after the drop', () => sent > settled + 30);
    for (let i = 0; i < HOSTS; i++) {
      const last = b.arrivals.get(`host${i}`)!.at(-1)! - deleted;
      t.ok(last <= CONVERGE_MS, `round ${round}: host${i}'s last request to it arrived ${last} ms after the DELETE answered`);
    }
  }
  stop = true;
  await Promise.all(loops);
  t.ok(sent > 100, `${sent} client requests sent`);
  t.equal(failed, 0, 'no client request failed');
});
