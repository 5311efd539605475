// W3C trace context passes through (or is started), the request id is tied to it, and the access
// log writes one sampled JSON line per request with the fields an operator needs.

import t from 'tap';
import { ensureBuilt, startSluice } from '../helpers/sluice.js';
import { startBackend } from '../helpers/backends.js';

t.before(ensureBuilt);

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

t.test('traceparent is passed through, or started, with the request id tied to it', async (t) => {
  const backend = await startBackend(t);
  const sluice = await startSluice(t, { upstreams: [backend.url] });

  const given = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  let res = await fetch(`${sluice.url}/given`, { headers: { traceparent: given } });
  t.equal(res.status, 200);
  let seen = backend.requests.at(-1)!;
  t.same(seen.headers.get('traceparent'), [given], 'a valid traceparent is forwarded unchanged');
  t.same(seen.headers.get('x-request-id'), ['4bf92f3577b34da6a3ce929d0e0e4736'], 'request id = its trace id');

  res = await fetch(`${sluice.url}/fresh`);
  t.equal(res.status, 200);
  seen = backend.requests.at(-1)!;
  const started = seen.headers.get('traceparent')?.[0] ?? '';
  const m = TRACEPARENT.exec(started);
  t.ok(m, `a new trace is started: ${started}`);
  t.same(seen.headers.get('x-request-id'), [m?.[1]], 'request id = the new trace id');

  res = await fetch(`${sluice.url}/bad`, { headers: { traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01' } });
  seen = backend.requests.at(-1)!;
  t.not(seen.headers.get('traceparent')?.[0], '00-00000000000000000000000000000000-00f067aa0ba902b7-01', 'an invalid one is replaced');
  t.ok(TRACEPARENT.test(seen.headers.get('traceparent')?.[0] ?? ''));

  res = await fetch(`${sluice.url}/both`, { headers: { traceparent: given, 'x-request-id': 'mine' } });
  seen = backend.requests.at(-1)!;
  t.same(seen.headers.get('x-request-id'), ['mine'], 'an explicit request id wins');
});

t.test('access log: one line per request with every field, flushed by shutdown', async (t) => {
  const backend = await startBackend(t);
  const sluice = await startSluice(t, { upstreams: [backend.url], workers: 2, env: { SLUICE_ACCESS_LOG: 'on' } });
  for (let i = 0; i < 20; i++) {
    const res = await fetch(`${sluice.url}/item/${i}?q=${i}`, { method: i % 2 ? 'POST' : 'GET', body: i % 2 ? 'x'.repeat(i) : undefined });
    t.equal(res.status, 200);
    await res.arrayBuffer();
  }
  t.equal(await sluice.stop(), 0);
  const lines = sluice.logs().filter((l) => l.type === 'access');
  t.equal(lines.length, 20, 'every request logged once');
  const byPath = new Map(lines.map((l) => [l.path as string, l]));
  for (let i = 0; i < 20; i++) {
    const l = byPath.get(`/item/${i}?q=${i}`);
    t.ok(l, `line for request ${i}`);
    if (!l) continue;
    t.equal(l.method, i % 2 ? 'POST' : 'GET');
    t.equal(l.status, 200);
    t.equal(l.client, '127.0.0.1');
    t.equal(l.backend, `127.0.0.1:${backend.port}`);
    t.equal(l.bytesIn, i % 2 ? i : 0);
    t.ok((l.bytesOut as number) > 0);
    t.ok((l.totalMs as number) >= (l.upstreamMs as number) && (l.upstreamMs as number) >= 0, 'total includes upstream time');
    t.equal(l.retries, 0);
    t.match(l.requestId, /^[0-9a-f]{32}$/);
    t.equal(l.requestId, l.traceId);
    t.type(l.time, 'number');
    t.equal(l.level, 30);
    t.equal(l.msg, 'access');
  }
});

t.test('access log sampling: rate 0.5 logs some but not all, off logs none', async (t) => {
  const backend = await startBackend(t);
  const sampled = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_ACCESS_LOG: '0.5' } });
  for (let i = 0; i < 200; i++) await (await fetch(`${sampled.url}/s`)).arrayBuffer();
  await sampled.stop();
  const n = sampled.logs().filter((l) => l.type === 'access').length;
  t.ok(n > 50 && n < 150, `about half of 200 sampled (got ${n})`);

  const off = await startSluice(t, { upstreams: [backend.url] });
  for (let i = 0; i < 20; i++) await (await fetch(`${off.url}/o`)).arrayBuffer();
  await off.stop();
  t.equal(off.logs().filter((l) => l.type === 'access').length, 0);
});
