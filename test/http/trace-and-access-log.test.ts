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
  /** GET `path` with `headers`; resolves with what the backend saw of exactly that request. */
  const via = async (path: string, headers: Record<string, string> = {}) => {
    const at = backend.requests.length;
    const res = await fetch(`${sluice.url}${path}`, { headers });
    t.equal(res.status, 200, `${path}: 200`);
    await res.arrayBuffer();
    const seen = await backend.request(at);
    t.equal(seen.url, path, `${path}: reached the backend`);
    return seen;
  };

  const given = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  let seen = await via('/given', { traceparent: given });
  t.same(seen.headers.get('traceparent'), [given], 'a valid traceparent is forwarded unchanged');
  t.same(seen.headers.get('x-request-id'), ['4bf92f3577b34da6a3ce929d0e0e4736'], 'request id = its trace id');

  seen = await via('/fresh');
  const started = seen.headers.get('traceparent')?.[0] ?? '';
  const m = TRACEPARENT.exec(started);
  t.ok(m, `a new trace is started: ${started}`);
  t.same(seen.headers.get('x-request-id'), [m?.[1]], 'request id = the new trace id');

  const zero = '00-00000000000000000000000000000000-00f067aa0ba902b7-01';
  seen = await via('/bad', { traceparent: zero });
  const replaced = seen.headers.get('traceparent') ?? [];
  t.equal(replaced.length, 1, 'one traceparent');
  t.not(replaced[0], zero, 'an invalid one is replaced');
  const fresh = TRACEPARENT.exec(replaced[0] ?? '');
  t.ok(fresh, `by a new trace: ${replaced[0]}`);
  t.not(fresh?.[1], m?.[1], 'a trace of its own');
  t.same(seen.headers.get('x-request-id'), [fresh?.[1]], 'the request id follows the new trace');

  seen = await via('/both', { traceparent: given, 'x-request-id': 'mine' });
  t.same(seen.headers.get('x-request-id'), ['mine'], 'an explicit request id wins');
  t.same(seen.headers.get('traceparent'), [given], 'and the trace still passes');

  // The access log is off here (the default): not one line for these requests.
  t.equal(sluice.logs().filter((l) => l.type === 'access').length, 0, 'access log off: no lines');
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

t.test('access log sampling: rate 0.5 logs some but not all', async (t) => {
  const backend = await startBackend(t);
  const sampled = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_ACCESS_LOG: '0.5' } });
  for (let i = 0; i < 200; i++) {
    const res = await fetch(`${sampled.url}/s`);
    t.equal(res.status, 200);
    await res.arrayBuffer();
  }
  t.equal(backend.requests.length, 200, 'every request reached the backend');
  t.equal(await sampled.stop(), 0);
  const n = sampled.logs().filter((l) => l.type === 'access').length;
  // Binomial(200, 0.5): outside 50..150 with a chance of about 1e-12.
  t.ok(n > 50 && n < 150, `about half of 200 sampled (got ${n})`);
});
