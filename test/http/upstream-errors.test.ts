// Upstream connections and failures through the real proxy: keep-alive reuse; a refused or
// unreachable backend (502 `connect`); a backend that never answers (504 `timeout`); a malformed
// response (502 `protocol`); a reset before any response byte (502 `reset`); a failure after the
// response started (the client connection is cut, nothing made up is appended); a client that
// leaves mid-request (the upstream request is aborted and its slot released); and 503 when the
// only backend is at its request cap. Every answer is checked by status, `x-sluice-error` and the
// message Sluice wrote, so a timeout cannot pass for a refusal and the other way round.

import t from 'tap';
import type net from 'node:net';
import { Agent, request } from 'undici';
import { ensureBuilt, startSluice, type Sluice } from '../helpers/sluice.js';
import { onRequestHeads, refusedPort, startBackend, startRawBackend, type HttpBackend, type RawBackend } from '../helpers/backends.js';
import { rawConnect, readResponse } from '../helpers/raw-client.js';
import { once } from '../helpers/http-once.js';
import { until } from '../helpers/wait.js';

const CONNECT_TIMEOUT_MS = 400;
const REQUEST_TIMEOUT_MS = 500;

t.before(ensureBuilt);

t.test('an echo backend behind 2 workers', async (t) => {
  const backend: HttpBackend = await startBackend(t, (req, res) => {
    if (req.url === '/hang' || req.url === '/upload') return; // never answered: the client gives up first
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const sluice = await startSluice(t, { upstreams: [backend.url], workers: 2, testHooks: true });

  t.test('upstream connections are reused across requests', async (t) => {
    const agent = new Agent({ connections: 8 });
    t.teardown(() => agent.close());
    const REQUESTS = 400;
    const CONCURRENCY = 8;
    let ok = 0;
    const run = async (): Promise<void> => {
      for (let i = 0; i < REQUESTS / CONCURRENCY; i++) {
        const res = await request(`${sluice.url}/r`, { dispatcher: agent });
        if ((await res.body.text()) === 'ok' && res.statusCode === 200) ok++;
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, run));
    t.equal(ok, REQUESTS, 'every request answered by the backend');
    // At most 8 in flight per worker, so at most 16 connections; never one per request.
    t.ok(backend.connections <= 16, `${backend.connections} backend connections for ${backend.requests.length} requests`);
  });

  t.test('a client that disconnects mid-request aborts the upstream request and frees its slot', async (t) => {
    const start = await sluice.snapshot();
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
    const abortedBefore = backend.aborted;
    waiting.destroy();
    uploading.destroy();
    await aborted;
    t.equal(backend.aborted - abortedBefore, 2, 'the backend saw both requests aborted');

    // The slot is released before the upstream socket is closed, so this is already settled.
    const after = await sluice.snapshot();
    t.equal(after.slots[0]!.inFlight, 0, 'in-flight back to 0');
    t.equal(after.slots[0]!.requests - start.slots[0]!.requests, 2, 'both counted once');
  });
});

t.test('connect failures: 502 `connect`, with the refusal or the timeout as the reason', async (t) => {
  const refused = await refusedPort();
  // TEST-NET-1 (RFC 5737): nothing answers (the connect timeout fires), or the host has no route,
  // or a sandbox's firewall refuses it (an immediate error). Each is a connect failure.
  const unreachable = 'http://192.0.2.1:9';
  const sluice = await startSluice(t, {
    upstreams: [`http://127.0.0.1:${refused}`, unreachable],
    env: {
      SLUICE_BALANCER: 'round-robin',
      SLUICE_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
      SLUICE_RETRIES: '0',
      SLUICE_OUTLIER_CONSECUTIVE_FAILURES: '0',
    },
  });
  // Round robin alternates: refused, unreachable, refused, unreachable.
  for (const method of ['GET', 'GET', 'POST', 'POST']) {
    const res = await once(sluice.port, '/x', { method, body: method === 'POST' ? 'data' : undefined });
    t.equal(res.status, 502, `${method}: 502, not 503: the backend exists, it failed`);
    t.equal(res.headers['x-sluice-error'], 'connect');
    if (res.body.includes(`127.0.0.1:${refused}`)) {
      t.match(res.body, /ECONNREFUSED/, `${method}: refused at once, not left to the timeout`);
    } else {
      t.match(res.body, /^(connect to 192\.0\.2\.1:9 timed out|192\.0\.2\.1:9: (EHOSTUNREACH|ENETUNREACH|ECONNREFUSED))$/m, `${method}: unreachable: ${res.body.trim()}`);
    }
  }
});

t.test('a scripted backend: silence, malformed responses, resets and cuts', async (t) => {
  /** Per backend connection: the request line it got, and whether Sluice closed it. */
  const conns: { line: string; closed: boolean }[] = [];
  const backend: RawBackend = await startRawBackend(t, (socket: net.Socket, index) => {
    conns[index] = { line: '', closed: false };
    socket.on('close', () => (conns[index]!.closed = true));
    onRequestHeads(socket, (head) => {
      const line = head.slice(0, head.indexOf('\r\n'));
      conns[index]!.line = line;
      const path = line.split(' ')[1];
      switch (path) {
        case '/silent': // accepts, reads the request, never answers
          return;
        case '/not-http':
          return void socket.write('SSH-2.0-OpenSSH_9.6\r\n\r\n');
        case '/two-lengths':
          return void socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello');
        case '/reset':
          return void socket.resetAndDestroy();
        case '/cut-length':
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n' + 'x'.repeat(100));
          return void setImmediate(() => socket.destroy());
        case '/cut-chunked':
          socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
          return void setImmediate(() => socket.destroy());
        default:
          return void socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      }
    });
  });
  const sluice: Sluice = await startSluice(t, {
    upstreams: [backend.url],
    // Retries off: the first failure is the answer. Outlier detection off: the one backend stays.
    env: {
      SLUICE_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      SLUICE_RETRIES: '0',
      SLUICE_OUTLIER_CONSECUTIVE_FAILURES: '0',
      SLUICE_ACCESS_LOG: 'on',
    },
  });
  /** The backend connection that last received `GET path`. */
  const connOf = (path: string): number => {
    for (let i = conns.length - 1; i >= 0; i--) if (conns[i]?.line.startsWith(`GET ${path} `)) return i;
    return -1;
  };

  t.test('no response head within the request timeout: 504, and the upstream connection is closed', async (t) => {
    const started = performance.now();
    const res = await once(sluice.port, '/silent');
    const elapsed = performance.now() - started;
    t.equal(res.status, 504);
    t.equal(res.headers['x-sluice-error'], 'timeout');
    t.match(res.body, /no response within the request timeout/);
    // A lower bound only: a loaded machine makes it later, never earlier.
    t.ok(elapsed >= REQUEST_TIMEOUT_MS - 50, `not before the timeout (${Math.round(elapsed)} ms)`);
    const index = connOf('/silent');
    await waitClosed(conns, index);
    t.ok(conns[index]!.closed, 'the upstream connection was closed');
  });

  t.test('a malformed response: 502 `protocol`, and that connection is never reused', async (t) => {
    for (const [path, reason] of [
      ['/not-http', /malformed status line/],
      ['/two-lengths', /differing content-length/],
    ] as const) {
      const res = await once(sluice.port, path);
      t.equal(res.status, 502, `${path}: 502`);
      t.equal(res.headers['x-sluice-error'], 'protocol', `${path}: protocol`);
      t.match(res.body, reason);
      t.notMatch(res.body, /hello/, `${path}: none of the malformed body is relayed`);
      const index = connOf(path);
      await waitClosed(conns, index);
      t.ok(conns[index]!.closed, `${path}: Sluice closed that connection`);
    }
    const next = await once(sluice.port, '/ok');
    t.equal(next.body, 'ok', 'the next request is served');
    t.not(connOf('/ok'), connOf('/two-lengths'), 'on another connection');
  });

  t.test('a reset before any response byte: 502 `reset`', async (t) => {
    const res = await once(sluice.port, '/reset');
    t.equal(res.status, 502);
    t.equal(res.headers['x-sluice-error'], 'reset');
    t.match(res.body, /ECONNRESET|closed/);
  });

  t.test('a failure after the response started cuts the client connection', async (t) => {
    // What may follow the head: the bytes the backend sent (uWS writes a chunk's closing CRLF in
    // front of the next chunk, so it may be missing), and never a last chunk or anything else.
    for (const [path, body] of [
      ['/cut-length', /^x{100}$/],
      ['/cut-chunked', /^5\r\nhello(\r\n)?$/],
    ] as const) {
      const client = await rawConnect(t, sluice.port);
      await client.write(`GET ${path} HTTP/1.1\r\nHost: a\r\nX-Request-Id: ${path.slice(1)}\r\n\r\n`);
      t.ok(await client.waitClosed(), `${path}: the client connection was closed`);
      const text = client.text();
      t.match(text, /^HTTP\/1\.1 200 OK\r\n/, `${path}: the head had already gone out`);
      const headEnd = text.indexOf('\r\n\r\n') + 4;
      t.match(text.slice(headEnd), body, `${path}: then exactly the bytes the backend sent, and nothing after`);
      t.equal(readResponse(text, 0, false), null, `${path}: the response is visibly incomplete`);
      if (path === '/cut-length') t.match(text, /\r\ncontent-length: 1000\r\n/i, 'the length announced was the backend’s');
      t.notMatch(text, /x-sluice-error/i, `${path}: no error header: it is too late for one`);
      const line = await sluice.waitForLog((l) => l.type === 'access' && l.requestId === path.slice(1));
      t.equal(line.status, 502, `${path}: logged as a 502`);
    }
    const next = await once(sluice.port, '/ok');
    t.equal(next.body, 'ok', 'Sluice goes on serving');
  });
});

t.test('503 only when no backend can take the request (the only one is at its request cap)', async (t) => {
  let release: () => void = () => {};
  const backend = await startBackend(t, (req, res) => {
    if (req.url === '/hold') release = () => res.end('held');
    else res.end('ok');
  });
  t.teardown(() => release());
  const sluice = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_MAX_REQUESTS_PER_BACKEND: '1' } });
  const held = request(`${sluice.url}/hold`);
  await backend.request(0);
  const res = await request(`${sluice.url}/x`);
  t.equal(await res.body.text(), 'every backend is at SLUICE_MAX_REQUESTS_PER_BACKEND\n');
  t.equal(res.statusCode, 503, 'none available: 503');
  t.equal(res.headers['x-sluice-error'], 'overloaded');
  t.equal(res.headers['retry-after'], '1');
  t.equal(backend.requests.length, 1, 'the refused request never reached the backend');
  release();
  t.equal(await (await held).body.text(), 'held', 'the request in flight was not disturbed');
  const after = await request(`${sluice.url}/x`);
  t.equal(after.statusCode, 200, 'served again once the backend has room');
  t.equal(await after.body.text(), 'ok');
});

/** Resolves once the backend saw connection `index` close (Sluice closes it when it gives up). */
async function waitClosed(conns: { closed: boolean }[], index: number): Promise<void> {
  await until(`backend connection ${index} to close`, () => conns[index]?.closed === true);
}
