// Upstream connections and failures: keep-alive reuse, a refused or unreachable backend (502
// within the connect timeout), a backend that never answers (504 at the request timeout), and a
// client that leaves mid-request (the upstream request is aborted and its slot released).

import t from 'tap';
import { Agent, request } from 'undici';
import { ensureBuilt, startSluice } from '../helpers/sluice.js';
import { refusedPort, startBackend, startRawBackend } from '../helpers/backends.js';
import { rawConnect } from '../helpers/raw-client.js';

const CONNECT_TIMEOUT_MS = 400;
const REQUEST_TIMEOUT_MS = 500;
/** Slack for Sluice's coarse deadline sweep (50 ms) and a busy test machine. */
const SLACK_MS = 600;

t.before(ensureBuilt);

t.test('upstream connections are reused across requests', async (t) => {
  const backend = await startBackend(t);
  const sluice = await startSluice(t, { upstreams: [backend.url], workers: 2 });
  const agent = new Agent({ connections: 8 });
  t.teardown(() => agent.close());
  const REQUESTS = 400;
  const CONCURRENCY = 8;
  let ok = 0;
  const run = async (): Promise<void> => {
    for (let i = 0; i < REQUESTS / CONCURRENCY; i++) {
      const res = await request(`${sluice.url}/r`, { dispatcher: agent });
      await res.body.text();
      if (res.statusCode === 200) ok++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, run));
  t.equal(ok, REQUESTS, 'every request answered');
  // At most 8 in flight per worker, so at most 16 connections; never one per request.
  t.ok(backend.connections <= 16, `${backend.connections} backend connections for ${backend.requests.length} requests`);
});

t.test('a refused backend: 502, at once', async (t) => {
  const port = await refusedPort();
  const sluice = await startSluice(t, {
    upstreams: [`http://127.0.0.1:${port}`],
    env: { SLUICE_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS) },
  });
  for (const method of ['GET', 'POST']) {
    const started = Date.now();
    const res = await request(`${sluice.url}/x`, { method, body: method === 'POST' ? 'data' : undefined });
    const elapsed = Date.now() - started;
    t.equal(res.statusCode, 502, `${method}: 502, not 503: the only backend exists, it failed`);
    t.equal(res.headers['x-sluice-error'], 'connect');
    await res.body.text();
    t.ok(elapsed < CONNECT_TIMEOUT_MS + SLACK_MS, `${method}: answered in ${elapsed} ms`);
  }
});

t.test('an unreachable backend: 502 within the connect timeout', async (t) => {
  // TEST-NET-1 (RFC 5737): either nothing answers (the connect timeout fires) or the host has
  // no route (an immediate error). Both must be a 502 inside the timeout.
  const sluice = await startSluice(t, {
    upstreams: ['http://192.0.2.1:9'],
    env: { SLUICE_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS), SLUICE_RETRIES: '0' },
  });
  const started = Date.now();
  const res = await request(`${sluice.url}/x`);
  const elapsed = Date.now() - started;
  await res.body.text();
  t.equal(res.statusCode, 502);
  t.equal(res.headers['x-sluice-error'], 'connect');
  t.ok(elapsed < CONNECT_TIMEOUT_MS + SLACK_MS, `answered in ${elapsed} ms`);
});

t.test('no response head within the request timeout: 504, and the backend sees the request dropped', async (t) => {
  let closed: () => void;
  const backendClosed = new Promise<void>((r) => (closed = r));
  // Accepts, reads the request, never answers.
  const backend = await startRawBackend(t, (socket) => socket.on('close', () => closed()));
  const sluice = await startSluice(t, {
    upstreams: [backend.url],
    env: { SLUICE_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS), SLUICE_RETRIES: '0' },
  });
  const started = Date.now();
  const res = await request(`${sluice.url}/slow`);
  const elapsed = Date.now() - started;
  await res.body.text();
  t.equal(res.statusCode, 504);
  t.equal(res.headers['x-sluice-error'], 'timeout');
  t.ok(elapsed >= REQUEST_TIMEOUT_MS - 50, `not before the timeout (${elapsed} ms)`);
  t.ok(elapsed < REQUEST_TIMEOUT_MS + SLACK_MS, `soon after it (${elapsed} ms)`);
  await backendClosed;
  t.pass('the upstream connection was closed');
});

t.test('a client that disconnects mid-request aborts the upstream request and frees its slot', async (t) => {
  const backend = await startBackend(t, () => {
    /* never answers: the client gives up first */
  });
  const sluice = await startSluice(t, { upstreams: [backend.url], testHooks: true });

  // Waiting for the response head.
  const waiting = await rawConnect(t, sluice.port);
  const at = backend.requests.length;
  await waiting.write('GET /hang HTTP/1.1\r\nHost: a\r\n\r\n');
  const first = await backend.request(at);
  // Half-way through sending a body.
  const uploading = await rawConnect(t, sluice.port);
  await uploading.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n' + 'x'.repeat(1000));
  const second = await backend.request(at + 1);
  const during = await sluice.snapshot();
  t.equal(during.slots[0]!.inFlight, 2, 'two requests in flight');

  const aborted = Promise.all([first, second].map((r) => new Promise((resolve) => r.res.once('close', resolve))));
  waiting.destroy();
  uploading.destroy();
  await aborted;
  t.equal(backend.aborted, 2, 'the backend saw both requests aborted');

  const after = await sluice.snapshot();
  t.equal(after.slots[0]!.inFlight, 0, 'in-flight back to 0');
  t.equal(after.slots[0]!.requests, 2);
});

t.test('503 only when no backend can take the request (the only one is at its request cap)', async (t) => {
  const backend = await startBackend(t, (req, res) => {
    if (req.url === '/hold') setTimeout(() => res.end('held'), 400);
    else res.end('ok');
  });
  const sluice = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_MAX_REQUESTS_PER_BACKEND: '1' } });
  const held = request(`${sluice.url}/hold`);
  await backend.request(0);
  const res = await request(`${sluice.url}/x`);
  await res.body.text();
  t.equal(res.statusCode, 503, 'none available: 503');
  t.equal(res.headers['x-sluice-error'], 'overloaded');
  t.equal(res.headers['retry-after'], '1');
  t.equal(await (await held).body.text(), 'held', 'the request in flight was not disturbed');
  const after = await request(`${sluice.url}/x`);
  t.equal(after.statusCode, 200, 'served again once the backend has room');
  await after.body.text();
});
