// A backend removed by discovery finishes the requests it has in flight (connection draining), and
// its table slot is handed to another backend only after that: a backend registered meanwhile gets
// a fresh slot, one registered after the drain reuses the old one.

import t from 'tap';
import type { ServerResponse } from 'node:http';
import { startBackend } from '../helpers/backends.js';
import { until } from '../helpers/wait.js';
import { request, startWithAdmin } from '../admin/admin-helpers.js';

t.test('removed backends drain before their slot is reused', async (t) => {
  const base = await startBackend(t, (_req, res) => res.end('base'));
  let held: ServerResponse | null = null;
  const slow = await startBackend(t, (req, res) => {
    if (req.url === '/hold') held = res;
    else res.end('slow');
  });
  const next = await startBackend(t, (_req, res) => res.end('next'));
  const third = await startBackend(t, (_req, res) => res.end('third'));
  const { sluice, admin } = await startWithAdmin(t, {
    upstreams: [],
    workers: 2,
    config: { pools: { api: { upstreams: [base.url], registry: true } }, routes: [{ match: { path_prefix: '/' }, pool: 'api' }] },
  });
  const api = (method: string, path: string, body?: unknown) =>
    request(`${admin}${path}`, { method, headers: { 'x-sluice-admin': '1' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const slots = async (): Promise<Record<string, number>> => {
    const b = JSON.parse((await api('GET', '/api/backends')).body);
    return Object.fromEntries(b.backends.map((x: { url: string; slot: number }) => [x.url, x.slot]));
  };

  t.equal((await api('PUT', '/api/registry/api', { url: slow.url, id: 'slow' })).status, 200);
  await until('the slow backend is a member', async () => slow.url in (await slots()));
  const slowSlot = (await slots())[slow.url]!;
  // A request that the slow backend holds open: keep sending until one of them lands there.
  let inFlight: Promise<{ status: number; body: string }> | null = null;
  await until('a request held by the slow backend', async () => {
    if (held !== null) return true;
    const r = request(`${sluice.url}/hold`);
    await until('it lands somewhere', () => held !== null || base.requests.length > 0, 2000).catch(() => undefined);
    if (held !== null) inFlight = r;
    else await r;
    base.requests.length = 0;
    return held !== null;
  });

  t.equal((await api('DELETE', '/api/registry/api/slow')).status, 200);
  await until('the slow backend left the membership', async () => !(slow.url in (await slots())));
  for (let i = 0; i < 6; i++) t.equal((await request(sluice.url)).body, 'base', 'new requests go elsewhere');

  t.equal((await api('PUT', '/api/registry/api', { url: next.url, id: 'next' })).status, 200);
  await until('next is a member', async () => next.url in (await slots()));
  t.not((await slots())[next.url], slowSlot, 'the draining slot is not handed out while a request holds it');

  (held as ServerResponse | null)!.end('finished');
  const done = await inFlight!;
  t.same(done, { ...done, status: 200, body: 'finished' }, 'the in-flight request to the removed backend finished');

  t.equal((await api('PUT', '/api/registry/api', { url: third.url, id: 'third' })).status, 200);
  await until('third is a member', async () => third.url in (await slots()));
  // Reclaim runs on a short timer once the request has ended: a later registration gets the slot.
  await until('the drained slot is reused', async () => {
    if ((await slots())[third.url] === slowSlot) return true;
    await api('DELETE', '/api/registry/api/third');
    await until('third left', async () => !(third.url in (await slots())));
    await api('PUT', '/api/registry/api', { url: third.url, id: 'third' });
    await until('third is back', async () => third.url in (await slots()));
    return (await slots())[third.url] === slowSlot;
  });
  t.equal((await slots())[third.url], slowSlot);
  await until('the reused slot serves its new backend', async () => (await request(sluice.url)).body === 'third');
  t.pass('the reused slot serves its new backend');
  // Its counters and latency are its own, not the slow backend's before it.
  const view = async () => JSON.parse((await api('GET', '/api/backends')).body).backends.find((x: { url: string }) => x.url === third.url);
  await until('latency of the reused slot counts only the new backend', async () => (await view()).latency.total.count === third.requests.length);
  t.equal((await view()).requests, third.requests.length, 'requests of the reused slot: only the new backend');
});
