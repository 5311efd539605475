// WebSockets through the built Sluice: real `ws` clients, a real `ws` backend, loopback sockets.
// Handshake (subprotocol, forwarded headers, refusals relayed), byte-exact relay both ways, pings,
// close codes both ways, backend failure, message size limit.

import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { startSluice } from '../helpers/sluice.js';
import { startWsBackend } from '../helpers/ws-backend.js';
import { until } from '../helpers/wait.js';
import { open, refusal, sendAndWait, waitClosed, waitMessages, type Opened } from '../helpers/ws-client.js';

const backend = await startWsBackend(t);
const sluice = await startSluice(t, {
  upstreams: [backend.url],
  env: { SLUICE_WS_MAX_MESSAGE_BYTES: String(4 * 1024 * 1024) },
});
const wsUrl = `ws://127.0.0.1:${sluice.port}`;

t.test('handshake: subprotocol chosen by the backend, request headers and target forwarded as sent', async (t) => {
  const o = await open(`${wsUrl}/chat/../room%2F1?x=é`, ['chat', 'superchat'], {
    headers: { origin: 'https://app.example', cookie: 'sid=abc; theme=dark', 'x-custom': Buffer.from('héllo').toString('latin1') },
  });
  t.equal(o.ws.protocol, 'superchat', 'the client is upgraded with the backend\'s choice');
  const hs = backend.conns.at(-1)!.handshake;
  // ws's client would send the normalised target; the client sent the raw one (ws normalises too,
  // so compare with what the client's own URL parser produced).
  t.equal(hs.url, new URL(`${wsUrl}/chat/../room%2F1?x=é`).pathname + new URL(`${wsUrl}/chat/../room%2F1?x=é`).search);
  t.equal(hs.headers.origin, 'https://app.example');
  t.equal(hs.headers.cookie, 'sid=abc; theme=dark');
  t.equal(Buffer.from(hs.headers['x-custom'] as string, 'latin1').toString('utf8'), 'héllo', 'non-ASCII value arrives as the same UTF-8 octets');
  t.equal(hs.headers['sec-websocket-protocol'], 'chat,superchat', 'the offer as the client sent it');
  t.equal(hs.headers['x-forwarded-for'], '127.0.0.1');
  t.equal(hs.headers['x-forwarded-proto'], 'http');
  t.match(hs.headers.via, /sluice/);
  t.ok(hs.headers['x-request-id'], 'a request id is added');
  t.equal(hs.headers['sec-websocket-extensions'], undefined, 'no deflate offered to the backend');
  t.same(o.response.headers['set-cookie'], ['ws=1'], "the backend's 101 headers reach the client");
  t.equal(o.response.headers['sec-websocket-protocol'], 'superchat');
  o.ws.close(1000);
  await waitClosed(o);
});

t.test('a raw target reaches the backend byte for byte (no dot-segment resolution)', async (t) => {
  // ws's own client normalises its URL, so speak the handshake by hand.
  const net = await import('node:net');
  const sock = net.connect(sluice.port, '127.0.0.1');
  const key = randomBytes(16).toString('base64');
  sock.write(`GET /a/../b?q=%41 HTTP/1.1\r\nhost: x.test\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: ${key}\r\nsec-websocket-version: 13\r\n\r\n`);
  let got = '';
  sock.on('data', (d) => (got += d.toString('latin1')));
  await until('the 101', () => got.includes('\r\n\r\n'));
  t.match(got, /^HTTP\/1\.1 101/);
  t.equal(backend.handshakes.at(-1)!.url, '/a/../b?q=%41');
  t.equal(backend.handshakes.at(-1)!.headers.host, 'x.test', 'Host preserved');
  sock.destroy();
});

t.test('a backend refusing the handshake: the client gets its status, headers and body', async (t) => {
  const r = await refusal(`${wsUrl}/refuse`);
  t.equal(r.status, 403);
  t.equal(r.body, 'not you\n');
  t.equal(r.headers['x-backend'], 'yes');
});

t.test('messages relayed byte-exact both ways: text, binary and fragmented, sha256 over 10 MiB', async (t) => {
  const o = await open(wsUrl);
  const conn = backend.conns.at(-1)!;
  const sent = createHash('sha256');
  let total = 0;
  let count = 0;
  const target = 10 * 1024 * 1024;
  let i = 0;
  // A well-behaved client: at most 1 MiB sent and not yet echoed (this uWS build cannot stop
  // reading a client, so a burst far over SLUICE_WS_MAX_BUFFER_BYTES toward the backend is closed
  // with 1013: tested on its own below).
  const echoed = (): number => o.received.reduce((n, m) => n + m.data.length, 0);
  while (total < target) {
    await until('room in flight', () => total - echoed() < 1024 * 1024 || o.closed !== null);
    const size = 1 + ((i * 7919) % 300_000);
    const kind = i % 3;
    if (kind === 0) {
      const text = Buffer.from(randomBytes(Math.ceil(size / 2)).toString('hex').slice(0, size));
      sent.update(text);
      o.ws.send(text.toString(), { binary: false });
      total += text.length;
    } else if (kind === 1) {
      const bin = randomBytes(size);
      sent.update(bin);
      o.ws.send(bin, { binary: true });
      total += bin.length;
    } else {
      // One message in three fragments.
      const bin = randomBytes(size + 2);
      sent.update(bin);
      const a = Math.floor(bin.length / 3);
      o.ws.send(bin.subarray(0, a), { binary: true, fin: false });
      o.ws.send(bin.subarray(a, 2 * a), { binary: true, fin: false });
      o.ws.send(bin.subarray(2 * a), { binary: true, fin: true });
      total += bin.length;
    }
    count++;
    i++;
  }
  await waitMessages(o, count);
  const back = createHash('sha256');
  let backBytes = 0;
  o.received.forEach((m, n) => {
    back.update(m.data);
    backBytes += m.data.length;
    if (m.isBinary !== (n % 3 !== 0)) t.fail(`message ${n} changed type`);
  });
  const digest = sent.digest('hex');
  t.equal(conn.bytes, total, 'the backend received every byte');
  t.equal(conn.messages, count, 'as many messages (fragments reassembled)');
  t.equal(conn.hash.digest('hex'), digest, 'client → backend sha256 matches');
  t.equal(backBytes, total);
  t.equal(back.digest('hex'), digest, 'backend → client sha256 matches');
  o.ws.close();
  await waitClosed(o);
});

t.test('pings and pongs both ways', async (t) => {
  const o = await open(wsUrl);
  const conn = backend.conns.at(-1)!;
  o.ws.ping('from-client');
  await until('the client ping at the backend', () => conn.pings.some((p) => p.toString() === 'from-client'));
  await until('a pong for it', () => o.pongs.some((p) => p.toString() === 'from-client'));
  o.ws.send('ping:from-backend');
  await until('the backend ping at the client', () => o.pings.some((p) => p.toString() === 'from-backend'));
  await until("the client's pong at the backend", () => conn.pongs.some((p) => p.toString() === 'from-backend'));
  t.equal(conn.pongs.filter((p) => p.toString() === 'from-backend').length, 1, 'exactly one pong: the client\'s own');
  o.ws.close();
  await waitClosed(o);
});

t.test('close code and reason relayed: client → backend', async (t) => {
  const o = await open(wsUrl);
  const conn = backend.conns.at(-1)!;
  o.ws.close(4321, 'client says bye');
  const c = await waitClosed(o);
  await until('backend close', () => conn.closed !== null);
  t.same(conn.closed, { code: 4321, reason: 'client says bye' });
  t.equal(c.code, 4321, 'the client gets its code echoed back');
});

t.test('close code and reason relayed: backend → client', async (t) => {
  const o = await open(wsUrl);
  o.ws.send('close:4002:backend says bye');
  t.same(await waitClosed(o), { code: 4002, reason: 'backend says bye' });
});

t.test('a client that vanishes: the backend gets 1001', async (t) => {
  const o = await open(wsUrl);
  const conn = backend.conns.at(-1)!;
  o.ws.terminate();
  await until('backend close', () => conn.closed !== null);
  t.equal(conn.closed!.code, 1001);
});

t.test('a backend killed mid-stream: the client gets 1011', async (t) => {
  const o = await open(wsUrl);
  o.ws.send('hello');
  await waitMessages(o, 1);
  o.ws.send('kill');
  const c = await waitClosed(o);
  t.equal(c.code, 1011);
  t.equal(c.reason, 'backend connection lost');
});

t.test('a backend sending invalid frames: the client gets 1014', async (t) => {
  const o = await open(wsUrl);
  const conn = backend.conns.at(-1)!;
  o.ws.send('garbage');
  t.same(await waitClosed(o), { code: 1014, reason: 'invalid frames from the backend' });
  await until('backend close', () => conn.closed !== null);
  t.equal(conn.closed!.code, 1002, 'the backend is told it broke the protocol');
});

t.test('compression is off by default: an offer of permessage-deflate is declined', async (t) => {
  const o = await open(wsUrl, [], { perMessageDeflate: true });
  t.equal(o.ws.extensions, '');
  o.ws.close();
  await waitClosed(o);
});

/** Open with permessage-deflate offered, send `texts`, and wait for them back. */
function compressedEcho(t: Test, port: number, texts: string[]): Promise<Opened> {
  return sendAndWait(
    t,
    () => open(`ws://127.0.0.1:${port}/`, [], { perMessageDeflate: true }),
    (o) => {
      for (const text of texts) o.ws.send(text);
    },
    texts.length,
  );
}

t.test('SLUICE_WS_COMPRESSION=shared: negotiated with the client, never with the backend, bytes unchanged', async (t) => {
  const s = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_WS_COMPRESSION: 'shared' } });
  // Several messages: each side's compression state (or its absence) must hold across messages.
  const texts = [0, 1, 2, 3].map((i) => `compressible ${i} `.repeat(10_000));
  const o = await compressedEcho(t, s.port, texts);
  t.match(o.ws.extensions, /permessage-deflate/);
  t.equal(backend.handshakes.at(-1)!.headers['sec-websocket-extensions'], undefined);
  t.same(o.received.map((m) => m.data.toString()), texts);
  t.equal(backend.conns.at(-1)!.bytes, texts.reduce((n, x) => n + x.length, 0), 'the backend got them inflated');
  o.ws.close();
  await waitClosed(o);
});

t.test('SLUICE_WS_COMPRESSION=dedicated: negotiated, messages unchanged', async (t) => {
  const s = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_WS_COMPRESSION: 'dedicated' } });
  const texts = [0, 1, 2].map((i) => `window ${i} `.repeat(5_000));
  const o = await compressedEcho(t, s.port, texts);
  t.match(o.ws.extensions, /permessage-deflate/);
  t.same(o.received.map((m) => m.data.toString()), texts);
  o.ws.close();
  await waitClosed(o);
});

t.test('no answer to the handshake within the timeouts: 504', async (t) => {
  const net = await import('node:net');
  const held = new Set<import('node:net').Socket>();
  const silent = net.createServer((sock) => {
    held.add(sock);
    sock.on('data', () => {});
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => (held.forEach((s) => s.destroy()), silent.close(() => r()))));
  const port = (silent.address() as import('node:net').AddressInfo).port;
  const s = await startSluice(t, {
    upstreams: [`http://127.0.0.1:${port}`],
    env: { SLUICE_CONNECT_TIMEOUT_MS: '200', SLUICE_REQUEST_TIMEOUT_MS: '200', SLUICE_RETRIES: '0' },
  });
  const r = await refusal(`ws://127.0.0.1:${s.port}/`);
  t.equal(r.status, 504);
  t.equal(r.headers['x-sluice-error'], 'timeout');
});

t.test('a refused connection is retried on another backend of the pool', async (t) => {
  const dead = await startWsBackend(t);
  await dead.close();
  const s = await startSluice(t, { upstreams: [dead.url, backend.url], env: { SLUICE_BALANCER: 'round-robin', SLUICE_RETRIES: '1' } });
  // Two handshakes: round robin sends one of them (at least) to the dead backend first. (The retry
  // budget allows 3 retries a second before traffic has paid for more, as for HTTP requests.)
  for (let i = 0; i < 2; i++) {
    const o = await open(`ws://127.0.0.1:${s.port}/`);
    o.ws.close();
    await waitClosed(o);
  }
  t.ok(s.logs().some((l) => l.msg === 'upstream error' && l.kind === 'connect'), 'a connect failure happened and was retried');
});

t.test('a message over SLUICE_WS_MAX_MESSAGE_BYTES closes with 1009, either way', async (t) => {
  const a = await open(wsUrl);
  const connA = backend.conns.at(-1)!;
  a.ws.send(Buffer.alloc(4 * 1024 * 1024 + 1));
  t.equal((await waitClosed(a)).code, 1009, 'client → backend: the client gets 1009');
  await until('backend close', () => connA.closed !== null);
  t.equal(connA.closed!.code, 1009, 'and so does the backend');
  t.equal(connA.bytes, 0, 'nothing of it reached the backend');

  const b = await open(wsUrl);
  const connB = backend.conns.at(-1)!;
  b.ws.send(`send:${4 * 1024 * 1024 + 1}`);
  t.equal((await waitClosed(b)).code, 1009, 'backend → client: the client gets 1009');
  await until('backend close', () => connB.closed !== null);
  t.equal(connB.closed!.code, 1009);
});

t.test('no backend listening: the handshake gets 502 as a normal response', async (t) => {
  const dead = await startWsBackend(t);
  await dead.close();
  const s = await startSluice(t, { upstreams: [dead.url], env: { SLUICE_RETRIES: '0' } });
  const r = await refusal(`ws://127.0.0.1:${s.port}/`);
  t.equal(r.status, 502);
  t.equal(r.headers['x-sluice-error'], 'connect');
});
