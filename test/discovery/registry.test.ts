// The registration API kept in memory (a pool with `registry: true` and no etcd source): token
// auth and the mutation guard, validation with named errors, traffic to a registered backend,
// heartbeat by repeating the PUT, expiry when the heartbeats stop, DELETE, and each backend's
// source in /api/pools.

import t from 'tap';
import { startBackend } from '../helpers/backends.js';
import { until } from '../helpers/wait.js';
import { request, startWithAdmin, type Reply } from '../admin/admin-helpers.js';

const TOKEN = 'registry-test-token-0123456789';

function call(admin: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return request(`${admin}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'x-sluice-admin': '1', 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Which backend answered: the test backends answer with their own port. */
async function servedBy(url: string): Promise<string> {
  const r = await request(url);
  return r.status === 200 ? r.body : `status ${r.status}`;
}

t.test('registry in memory: auth, validation, heartbeat, expiry, delete, source', async (t) => {
  const fixed = await startBackend(t, (_req, res) => res.end('fixed'));
  const joined = await startBackend(t, (_req, res) => res.end('joined'));
  const { sluice, admin } = await startWithAdmin(t, {
    upstreams: [],
    env: { SLUICE_ADMIN_TOKEN: TOKEN },
    config: {
      pools: {
        api: { upstreams: [fixed.url], registry: true },
        other: { upstreams: [fixed.url] },
      },
      routes: [{ match: { path_prefix: '/' }, pool: 'api' }],
    },
  });

  t.test('auth and the mutation guard', async (t) => {
    const noToken = await request(`${admin}/api/registry/api`, { method: 'PUT', body: JSON.stringify({ url: joined.url }) });
    t.equal(noToken.status, 401, 'no token: 401');
    const wrong = await call(admin, 'PUT', '/api/registry/api', { url: joined.url }, { authorization: 'Bearer nope' });
    t.equal(wrong.status, 403, 'wrong token: 403');
    const noMarker = await request(`${admin}/api/registry/api`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
    t.equal(noMarker.status, 403, 'DELETE without x-sluice-admin: 403');
    const list = await call(admin, 'GET', '/api/registry/api');
    t.equal(list.status, 200);
    t.same(JSON.parse(list.body), { pool: 'api', store: 'memory', registrations: [] });
  });

  t.test('validation names what is wrong', async (t) => {
    const cases: [unknown, RegExp][] = [
      ['{not json', /body must be JSON/],
      [{ url: 'ftp://10.0.0.1' }, /url/],
      [{ url: 'http://10.0.0.1:80/path' }, /without a path/],
      [{ weight: 1 }, /url/],
      [{ url: joined.url, weight: 0 }, /weight: expected a number above 0/],
      [{ url: joined.url, weight: 5000 }, /weight: expected a number above 0 and at most 1000/],
      [{ url: joined.url, weight: '2' }, /weight/],
      [{ url: joined.url, ttl_s: 0 }, /ttl_s: expected whole seconds from 1 to 3600/],
      [{ url: joined.url, ttl_s: 1.5 }, /ttl_s/],
      [{ url: joined.url, ttl_s: 99999 }, /ttl_s/],
      [{ url: joined.url, colour: 'red' }, /unknown key "colour"/],
      [{ url: joined.url, id: 'a/b' }, /id:/],
    ];
    for (const [body, error] of cases) {
      const r = await call(admin, 'PUT', '/api/registry/api', body);
      t.equal(r.status, 400, `${JSON.stringify(body)}: 400`);
      t.match(JSON.parse(r.body).error, error, `${JSON.stringify(body)}: ${error}`);
    }
    const notTaking = await call(admin, 'PUT', '/api/registry/other', { url: joined.url });
    t.equal(notTaking.status, 404, 'a pool without registry: 404');
    t.match(JSON.parse(notTaking.body).error, /does not take registrations/);
    const unknownPool = await call(admin, 'PUT', '/api/registry/nope', { url: joined.url });
    t.equal(unknownPool.status, 404);
    const badMethod = await call(admin, 'POST', '/api/registry/api', { url: joined.url });
    t.equal(badMethod.status, 405);
    t.equal(badMethod.headers.allow, 'GET, HEAD, PUT');
  });

  t.test('register, serve, heartbeat, expire', async (t) => {
    const put = await call(admin, 'PUT', '/api/registry/api', { url: joined.url, weight: 2, ttl_s: 2 });
    t.equal(put.status, 200);
    const reg = JSON.parse(put.body);
    t.equal(reg.store, 'memory');
    t.equal(reg.registration.id, `127.0.0.1:${joined.port}`, 'the id defaults to host:port');
    t.equal(reg.registration.weight, 2);
    await until('the registered backend serves', async () => (await servedBy(sluice.url)) === 'joined');
    const pools = JSON.parse((await call(admin, 'GET', '/api/pools')).body);
    const api = pools.pools.find((p: { name: string }) => p.name === 'api');
    const sources = Object.fromEntries(api.members.map((m: { url: string; source: string }) => [m.url, m.source]));
    t.same(sources, { [fixed.url]: 'static', [joined.url]: 'registry' }, '/api/pools names each backend source');
    t.same(api.discovery, { sources: [], registry: true });

    // Heartbeats (the same PUT, every third of the ttl) keep it past its first expiry. Time has
    // to pass here: the wait is for the clock, not for a state.
    const firstExpiry = reg.registration.expires_at as number;
    let lastBeat = Date.now();
    while (Date.now() < firstExpiry + 1000) {
      await until('a third of the ttl since the last heartbeat', () => Date.now() - lastBeat >= 650, 5000, 50);
      t.equal((await call(admin, 'PUT', '/api/registry/api', { url: joined.url, weight: 2, ttl_s: 2 })).status, 200, 'heartbeat');
      lastBeat = Date.now();
    }
    const list = JSON.parse((await call(admin, 'GET', '/api/registry/api')).body);
    t.equal(list.registrations.length, 1, 'still registered after its first ttl, thanks to heartbeats');
    await until('the heart-beating backend still serves', async () => (await servedBy(sluice.url)) === 'joined');
    t.pass('still serving after its first ttl');

    // No more heartbeats: it expires and leaves the pool.
    await sluice.waitForLog((l) => l.msg === 'registry: registration expired (no heartbeat)', 10_000);
    await until('membership without it', async () => {
      const p = JSON.parse((await call(admin, 'GET', '/api/pools')).body);
      return p.pools.find((x: { name: string }) => x.name === 'api').members.length === 1;
    });
    for (let i = 0; i < 10; i++) t.equal(await servedBy(sluice.url), 'fixed', 'only the static backend serves after expiry');
  });

  t.test('delete', async (t) => {
    t.equal((await call(admin, 'PUT', '/api/registry/api', { url: joined.url, id: 'joined-1', ttl_s: 60 })).status, 200);
    await until('the registered backend serves', async () => (await servedBy(sluice.url)) === 'joined');
    const del = await call(admin, 'DELETE', '/api/registry/api/joined-1');
    t.equal(del.status, 200);
    t.same(JSON.parse(del.body), { pool: 'api', deleted: 'joined-1' });
    t.equal((await call(admin, 'DELETE', '/api/registry/api/joined-1')).status, 404, 'deleting it again: 404');
    await until('membership without it', async () => {
      const p = JSON.parse((await call(admin, 'GET', '/api/pools')).body);
      return p.pools.find((x: { name: string }) => x.name === 'api').members.length === 1;
    });
    for (let i = 0; i < 10; i++) t.equal(await servedBy(sluice.url), 'fixed');
    const changes = sluice.logs().filter((l) => l.msg === 'membership changed');
    t.ok(changes.length >= 4, 'each change logged as a membership change');
  });
});
