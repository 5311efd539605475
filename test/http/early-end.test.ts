// An exchange can end on the client side before its upstream work is done: the body passes
// SLUICE_MAX_BODY_BYTES (413), the client goes away, a wait times out, or the backend answers or
// fails before the upload is finished. Each case here ends one while a retry, a connection or a
// pool wait is still pending, and checks that nothing is sent for the dead request, the worker
// does not crash, and the client connection is never left stalled.

import t from 'tap';
import { ensureBuilt, startSluice } from '../helpers/sluice.js';
import { refusedPort, startBackend, startRawBackend, type SeenRequest } from '../helpers/backends.js';
import { rawConnect } from '../helpers/raw-client.js';

t.before(ensureBuilt);

const crashed = (lines: { msg: string }[]): boolean => lines.some((l) => l.msg === 'worker crashed');

t.test('413 while a retry waits in its back-off: no crash, the dead request is never sent', async (t) => {
  const backend = await startBackend(t);
  const closed = await refusedPort();
  const sluice = await startSluice(t, {
    upstreams: [`http://127.0.0.1:${closed}`, backend.url],
    // A budget that always allows the retry: each request deposits a whole retry token.
    env: { SLUICE_BALANCER: 'round-robin', SLUICE_MAX_BODY_BYTES: '1000', SLUICE_RETRIES: '2', SLUICE_RETRY_BUDGET_PERCENT: '100' },
  });
  for (let i = 0; i < 10; i++) {
    const c = await rawConnect(t, sluice.port);
    await c.write(`PUT /up-${i} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`);
    // The first try goes to the refused port half of the time; its retry is then in back-off
    // (about 25 ms) when the oversized chunk arrives.
    await new Promise((r) => setTimeout(r, 5));
    await c.write('800\r\n' + 'a'.repeat(2048) + '\r\n').catch(() => undefined);
    const res = await c.response();
    t.equal(res.status, 413, `request ${i}: 413`, { body: res.body.toString(), headers: res.headers });
  }
  // Still serving, no restart, and every pending retry saw the exchange was over.
  const c = await rawConnect(t, sluice.port);
  await c.write('GET /after HTTP/1.1\r\nHost: x\r\n\r\n');
  t.equal((await c.response()).status, 200, 'still serving');
  t.notOk(crashed(sluice.logs()), 'no worker crashed');
  t.same(
    backend.requests.filter((r) => r.url.startsWith('/up-') && r.req.complete).map((r) => r.url),
    [],
    'no refused upload reached the backend complete',
  );
});

t.test('a client that goes away while queued for a connection is never sent', async (t) => {
  const held: SeenRequest[] = [];
  const backend = await startBackend(t, (_req, res, seen) => {
    if (seen.url === '/hold') held.push(seen);
    else res.end('ok');
  });
  const sluice = await startSluice(t, {
    upstreams: [backend.url],
    testHooks: true,
    env: { SLUICE_UPSTREAM_CONNECTIONS: '1', SLUICE_RETRIES: '0' },
  });
  const inFlight = async (): Promise<number> => (await sluice.snapshot()).slots[0]!.inFlight;
  const first = await rawConnect(t, sluice.port);
  await first.write('GET /hold HTTP/1.1\r\nHost: x\r\n\r\n');
  await backend.request(0);
  const queued = await rawConnect(t, sluice.port);
  await queued.write('GET /gone HTTP/1.1\r\nHost: x\r\n\r\n');
  while ((await inFlight()) !== 2) await new Promise((r) => setTimeout(r, 20));
  // The second request is in the pool's wait list now; its client leaves.
  queued.destroy();
  while ((await inFlight()) !== 1) await new Promise((r) => setTimeout(r, 20));
  held[0]!.res.end('held');
  t.equal((await first.response()).status, 200, 'the held request finishes');
  const after = await rawConnect(t, sluice.port);
  await after.write('GET /after HTTP/1.1\r\nHost: x\r\n\r\n');
  t.equal((await after.response()).status, 200);
  t.same(
    backend.requests.map((r) => r.url),
    ['/hold', '/after'],
    'the abandoned request never reached the backend',
  );
  t.notOk(crashed(sluice.logs()));
});

t.test('a pool wait longer than the connect timeout ends in a 503, and is never sent', async (t) => {
  const held: SeenRequest[] = [];
  const backend = await startBackend(t, (_req, res, seen) => {
    if (seen.url === '/hold') held.push(seen);
    else res.end('ok');
  });
  const sluice = await startSluice(t, {
    upstreams: [backend.url],
    env: { SLUICE_UPSTREAM_CONNECTIONS: '1', SLUICE_RETRIES: '0', SLUICE_CONNECT_TIMEOUT_MS: '300', SLUICE_REQUEST_TIMEOUT_MS: '30000' },
  });
  const first = await rawConnect(t, sluice.port);
  await first.write('GET /hold HTTP/1.1\r\nHost: x\r\n\r\n');
  await backend.request(0);
  const queued = await rawConnect(t, sluice.port);
  await queued.write('GET /waits HTTP/1.1\r\nHost: x\r\n\r\n');
  const res = await queued.response(0, { timeoutMs: 10_000 });
  t.equal(res.status, 503, 'the waiter gets 503');
  t.equal(res.get('x-sluice-error'), 'overloaded');
  held[0]!.res.end('held');
  t.equal((await first.response()).status, 200, 'the held request still finishes');
  t.same(backend.requests.map((r) => r.url), ['/hold'], 'the timed-out waiter was never sent');
});

t.test('a 502 in the middle of an upload closes the connection instead of leaving it paused', async (t) => {
  const closed = await refusedPort();
  const sluice = await startSluice(t, { upstreams: [`http://127.0.0.1:${closed}`], env: { SLUICE_RETRIES: '0' } });
  const c = await rawConnect(t, sluice.port);
  const size = 200_000;
  // Head and body together: most of the body is still on its way when the connect fails.
  c.write(`POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n` + 'b'.repeat(size)).catch(() => undefined);
  const res = await c.response(0, { timeoutMs: 10_000 });
  t.equal(res.status, 502);
  t.equal(res.get('connection')?.toLowerCase(), 'close', 'the 502 says the connection closes');
  t.ok(await c.waitClosed(5000), 'and Sluice closes it (no stall until the idle reset)');
});

t.test('a backend that answers before the upload ends: the client gets the answer and a close', async (t) => {
  const raw = await startRawBackend(t, (socket) => {
    socket.once('data', () => socket.write('HTTP/1.1 403 Forbidden\r\ncontent-length: 6\r\n\r\ndenied'));
  });
  const sluice = await startSluice(t, { upstreams: [raw.url], env: { SLUICE_RETRIES: '0' } });
  const c = await rawConnect(t, sluice.port);
  const size = 4 * 1024 * 1024;
  await c.write(`POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
  // Keep uploading, as a client that does not watch for an early answer would.
  const body = Buffer.alloc(64 * 1024, 0x61);
  const upload = (async () => {
    for (let sent = 0; sent < size && !c.closed; sent += body.length) await c.write(body).catch(() => undefined);
    return true;
  })();
  const res = await c.response(0, { timeoutMs: 10_000 });
  t.equal(res.status, 403);
  t.equal(res.body.toString(), 'denied');
  t.equal(res.get('connection')?.toLowerCase(), 'close', 'the early answer asks the client to close');
  // Never a stall: the rest of the upload is taken (and thrown away) or the connection is closed.
  const finished = await Promise.race([upload, new Promise((r) => setTimeout(() => r(false), 15_000))]);
  t.equal(finished, true, 'the upload is not left stuck behind a paused connection');
});

t.test('an upload longer than the request timeout is not cut while the backend reads it', async (t) => {
  const backend = await startBackend(t);
  const sluice = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_REQUEST_TIMEOUT_MS: '600', SLUICE_RETRIES: '0' } });
  const c = await rawConnect(t, sluice.port);
  await c.write('PUT /slow-upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
  // 8 pieces 200 ms apart: 1.6 s of upload against a 600 ms request timeout.
  for (let i = 0; i < 8; i++) {
    await new Promise((r) => setTimeout(r, 200));
    await c.write('400\r\n' + 'u'.repeat(1024) + '\r\n');
  }
  await c.write('0\r\n\r\n');
  const res = await c.response(0, { timeoutMs: 10_000 });
  t.equal(res.status, 200, 'the upload completes');
  t.equal(JSON.parse(res.body.toString()).bytes, 8 * 1024, 'every byte reached the backend');
});

t.test('a stalled upload still ends with 504', async (t) => {
  const backend = await startBackend(t);
  const sluice = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_REQUEST_TIMEOUT_MS: '500', SLUICE_RETRIES: '0' } });
  const c = await rawConnect(t, sluice.port);
  await c.write('PUT /stalled HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
  const res = await c.response(0, { timeoutMs: 10_000 });
  t.equal(res.status, 504);
  t.equal(res.get('x-sluice-error'), 'timeout');
});

t.test('the wait for the answer starts when the request is sent', async (t) => {
  // The backend reads the whole (slow) upload, then takes 300 ms to answer: within a 600 ms
  // timeout counted from the end of the request, though the exchange as a whole takes longer.
  const backend = await startBackend(t, (req, res) => {
    req.resume();
    req.on('end', () => setTimeout(() => res.end('late but in time'), 300));
  });
  const sluice = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_REQUEST_TIMEOUT_MS: '600', SLUICE_RETRIES: '0' } });
  const c = await rawConnect(t, sluice.port);
  await c.write('POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setTimeout(r, 200));
    await c.write('1\r\nz\r\n');
  }
  await c.write('0\r\n\r\n');
  const res = await c.response(0, { timeoutMs: 10_000 });
  t.equal(res.status, 200);
  t.equal(res.body.toString(), 'late but in time');
});
