// WebSocket limits and lifetimes through the built Sluice: a slow client stops Sluice reading its
// backend (memory stays bounded, nothing is lost), a slow backend is bounded with 1013, the idle
// timeout pings and closes, a drain ends WebSockets with 1001, balancing and metrics count them.

import t from 'tap';
import http from 'node:http';
import { createHash } from 'node:crypto';
import { startSluice, freePort } from '../helpers/sluice.js';
import { startWsBackend } from '../helpers/ws-backend.js';
import { until } from '../helpers/wait.js';
import { open, waitClosed, waitMessages } from '../helpers/ws-client.js';

const MiB = 1024 * 1024;

t.test('a slow client: Sluice stops reading the backend, its memory stays bounded, nothing is lost', async (t) => {
  const backend = await startWsBackend(t);
  const sluice = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_WS_MAX_BUFFER_BYTES: String(MiB) } });
  const o = await open(`ws://127.0.0.1:${sluice.port}/`);
  const conn = backend.conns.at(-1)!;
  const before = sluice.rssBytes();
  o.ws.pause(); // the client stops reading
  const count = 800;
  const size = 256 * 1024; // 200 MiB in all
  o.ws.send(`flood:${count}:${size}`);
  // The backend cannot hand its messages on: Sluice stopped reading it (its queue grows), whatever
  // the kernel's socket buffers hold in between.
  await until('the backend to hold 120 MiB it cannot send', () => conn.ws.bufferedAmount > 120 * MiB, 60_000);
  const grown = sluice.rssBytes() - before;
  t.ok(grown < 64 * MiB, `Sluice grew by ${(grown / MiB).toFixed(1)} MiB while 120+ MiB waited at the backend`);
  o.ws.resume();
  await waitMessages(o, count);
  t.equal(o.received.reduce((n, m) => n + m.data.length, 0), count * size, 'every byte arrived once the client read again');
  o.ws.close();
  await waitClosed(o);
});

t.test('a slow backend: the client is closed with 1013 once SLUICE_WS_MAX_BUFFER_BYTES are queued toward it', async (t) => {
  const backend = await startWsBackend(t);
  const sluice = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_WS_MAX_BUFFER_BYTES: String(MiB) } });
  const o = await open(`ws://127.0.0.1:${sluice.port}/`);
  const conn = backend.conns.at(-1)!;
  o.ws.send('pause');
  await until('the backend to stop reading', () => conn.messages === 1);
  const piece = Buffer.alloc(64 * 1024, 1);
  const before = sluice.rssBytes();
  // Keep sending until Sluice gives up (the kernel buffers fill first, then Sluice's queue).
  while (o.closed === null) {
    if (o.ws.bufferedAmount < 4 * MiB) o.ws.send(piece);
    await new Promise((r) => setImmediate(r));
  }
  t.equal(o.closed.code, 1013);
  t.equal(o.closed.reason, 'backend too slow');
  t.ok(sluice.rssBytes() - before < 64 * MiB, 'Sluice memory stayed bounded');
  conn.ws.resume();
  await until('backend close', () => conn.closed !== null);
  t.equal(conn.closed!.code, 1013, 'the backend is told too');
});

t.test('a backend that stops reading for a while, under SLUICE_WS_MAX_BUFFER_BYTES: every message reaches it, in order, once it reads again', async (t) => {
  const backend = await startWsBackend(t);
  const sluice = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_WS_MAX_BUFFER_BYTES: String(256 * MiB) } });
  const o = await open(`ws://127.0.0.1:${sluice.port}/`);
  const conn = backend.conns.at(-1)!;
  const sent = createHash('sha256');
  o.ws.send('pause');
  sent.update('pause');
  await until('the backend to stop reading', () => conn.messages === 1);
  // 40 MiB in small messages: more than the loopback socket buffers hold, so Sluice's writes to
  // the backend are held by libuv (tcp-transport.ts) and its scratch buffers wait for them.
  let count = 0;
  for (let total = 0; total < 40 * MiB; count++) {
    const m = Buffer.alloc(1024 + ((count * 37) % 3000), count & 0xff);
    m.writeUInt32LE(count, 0);
    sent.update(m);
    total += m.length;
    o.ws.send(m);
    if (o.ws.bufferedAmount > 4 * MiB) await until('the client socket to drain', () => o.ws.bufferedAmount < MiB);
  }
  await until('the client to have sent everything', () => o.ws.bufferedAmount === 0);
  t.equal(o.closed, null, 'not closed: the queue stayed under the limit');
  conn.ws.resume();
  await until('every message at the backend', () => conn.messages === count + 1, 60_000);
  t.equal(conn.hash.digest('hex'), sent.digest('hex'), 'bytes and order intact');
  await waitMessages(o, count);
  o.ws.close();
  await waitClosed(o);
});

t.test('idle timeout: a silent client is pinged, a client that never answers is closed with 1001', async (t) => {
  const backend = await startWsBackend(t);
  const sluice = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_WS_IDLE_TIMEOUT_MS: '400' } });
  const live = await open(`ws://127.0.0.1:${sluice.port}/`);
  const dead = await open(`ws://127.0.0.1:${sluice.port}/`, [], { autoPong: false });
  const deadConn = backend.conns.at(-1)!;
  const c = await waitClosed(dead);
  t.same(c, { code: 1001, reason: 'idle timeout' }, 'no pong within the timeout: closed with 1001');
  t.ok(dead.pings.length >= 1, 'it was pinged first');
  await until('backend close', () => deadConn.closed !== null);
  t.equal(deadConn.closed!.code, 1001, 'and the backend gets 1001 too');
  // The answering client outlives several timeouts: each ping comes after half a timeout of silence.
  await until('three keepalive pings', () => live.pings.length >= 3);
  t.equal(live.closed, null, 'a client that answers pings stays open');
  t.equal(live.pings[0]!.toString(), 'sluice-keepalive');
  t.equal(backend.conns[0]!.pongs.length, 0, "Sluice's keepalive pongs are not relayed to the backend");
  live.ws.close();
  await waitClosed(live);
});

t.test('drain: open WebSockets keep working until the drain timeout, then get 1001 both ways', async (t) => {
  const backend = await startWsBackend(t);
  const sluice = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_DRAIN_TIMEOUT_MS: '1500' } });
  const o = await open(`ws://127.0.0.1:${sluice.port}/`);
  const conn = backend.conns.at(-1)!;
  sluice.child.kill('SIGTERM');
  await sluice.waitForLog((l) => /drain/i.test(l.msg));
  o.ws.send('still here');
  await waitMessages(o, 1);
  t.equal(o.received[0]!.data.toString(), 'still here', 'messages still flow while draining');
  t.same(await waitClosed(o), { code: 1001, reason: 'server going away' });
  await until('backend close', () => conn.closed !== null);
  t.equal(conn.closed!.code, 1001);
  const exit = await sluice.exited;
  t.equal(exit.code, 0, 'and the process exits cleanly');
});

t.test('balancing: least-conn counts each open WebSocket as a connection on its backend; metrics count them', async (t) => {
  const a = await startWsBackend(t);
  const b = await startWsBackend(t);
  const adminPort = await freePort();
  const sluice = await startSluice(t, {
    upstreams: [a.url, b.url],
    env: { SLUICE_BALANCER: 'least-conn', SLUICE_ADMIN_LISTEN: `127.0.0.1:${adminPort}` },
  });
  const opened = [];
  for (let i = 0; i < 6; i++) opened.push(await open(`ws://127.0.0.1:${sluice.port}/`));
  t.equal(a.conns.length, 3, 'three on the first backend');
  t.equal(b.conns.length, 3, 'three on the second');
  opened[0]!.ws.send('hello');
  await waitMessages(opened[0]!, 1);
  const metrics = await get(`http://127.0.0.1:${adminPort}/metrics`);
  const aId = `127.0.0.1:${a.port}`;
  t.match(metrics, `sluice_backend_websockets{backend="${aId}",pool="default"} 3`);
  t.match(metrics, `sluice_backend_open_connections{backend="${aId}",pool="default"} 3`);
  const first = a.conns.some((c) => c.messages === 1) ? aId : `127.0.0.1:${b.port}`;
  t.match(metrics, `sluice_websocket_messages_total{backend="${first}",pool="default",direction="to_backend"} 1`);
  t.match(metrics, `sluice_websocket_messages_total{backend="${first}",pool="default",direction="to_client"} 1`);
  t.match(metrics, `sluice_websocket_bytes_total{backend="${first}",pool="default",direction="to_client"} 5`);
  t.match(metrics, `sluice_requests_total{backend="${aId}",pool="default",code_class="1xx"} 3`, 'each handshake is a request answered 101');
  for (const o of opened) o.ws.close(4000, 'done');
  for (const o of opened) await waitClosed(o);
  await until('both backends to see every close', () => [...a.conns, ...b.conns].every((c) => c.closed !== null));
  await until('the gauge back to 0', async () => (await get(`http://127.0.0.1:${adminPort}/metrics`)).includes(`sluice_backend_websockets{backend="${aId}",pool="default"} 0`));
  const after = await get(`http://127.0.0.1:${adminPort}/metrics`);
  t.match(after, `sluice_websocket_closes_total{by="client",code="other"} 6`, 'closes counted by who and code (4000 is "other")');
  t.match(after, `sluice_backend_open_connections{backend="${aId}",pool="default"} 0`);
});

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (s: string) => (body += s));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}
