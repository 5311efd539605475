// The upstream leg's transports (leg-transport.ts) on real loopback sockets: which one a backend
// gets, writes the kernel cannot take at once (a backend that stops reading) with every byte
// intact and the scratch buffers reused after, a backend that resets or sends FIN, frames cut
// across reads, and the Node socket transport for a backend given by name.

import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { openTransport, type TransportEvents } from '../../src/ws/leg-transport.js';
import { TcpTransport } from '../../src/ws/tcp-transport.js';
import { TlsTransport } from '../../src/ws/tls-transport.js';
import { UpstreamLeg, type LegSink } from '../../src/ws/upstream-leg.js';
import { until } from '../helpers/wait.js';
import type { Teardown } from '../helpers/sluice.js';

const MiB = 1024 * 1024;

interface Seen {
  messages: Buffer[];
  pings: Buffer[];
  close: { code: number; reason: string } | null;
  upgraded: boolean;
  failed: string | null;
  gone: boolean;
  sent: number;
}

function recorder(): { sink: LegSink; seen: Seen } {
  const seen: Seen = { messages: [], pings: [], close: null, upgraded: false, failed: null, gone: false, sent: 0 };
  const sink: LegSink = {
    onMessage: (data) => seen.messages.push(Buffer.from(data)),
    onPing: (data) => seen.pings.push(Buffer.from(data)),
    onPong: () => {},
    onClose: (code, reason) => (seen.close = { code, reason: reason.toString() }),
    onFrameError: (code, why) => (seen.failed = `${code} ${why}`),
    onUpgrade: () => (seen.upgraded = true),
    onRefusal: (status) => (seen.failed = `refused ${status}`),
    onHandshakeError: (err) => (seen.failed = err.kind),
    onGone: () => (seen.gone = true),
    corked: (fn) => fn(),
    onSent: (messages) => (seen.sent += messages),
  };
  return { sink, seen };
}

function leg(host: string, port: number, sink: LegSink): UpstreamLeg {
  return new UpstreamLeg(sink, { host, port, tls: null, head: `GET / HTTP/1.1\r\nhost: ${host}\r\n`, protocols: [], timeoutMs: 5000, maxMessageBytes: 64 * MiB });
}

/** A `ws` server; `onConnection` may act on each connection. Received messages are hashed per connection. */
async function wsServer(t: Teardown, onConnection?: (ws: WebSocket) => void): Promise<{ port: number; conns: { ws: WebSocket; count: number; hash: ReturnType<typeof createHash> }[] }> {
  const server = http.createServer();
  const wss = new WebSocketServer({ server, maxPayload: 64 * MiB });
  const conns: { ws: WebSocket; count: number; hash: ReturnType<typeof createHash> }[] = [];
  wss.on('connection', (ws) => {
    const c = { ws, count: 0, hash: createHash('sha256') };
    conns.push(c);
    ws.on('message', (data: Buffer) => {
      c.count++;
      c.hash.update(data);
    });
    ws.on('error', () => {});
    onConnection?.(ws);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const c of wss.clients) c.terminate();
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as net.AddressInfo).port, conns };
}

/** A server that answers the upgrade by hand, then hands the socket to `then` (a backend that misbehaves on purpose). */
async function rawServer(t: Teardown, then: (sock: net.Socket) => void): Promise<number> {
  const server = net.createServer((sock) => {
    let head = '';
    sock.on('error', () => {});
    const onHead = (d: Buffer): void => {
      head += d.toString('latin1');
      const key = /sec-websocket-key: (\S+)/i.exec(head)?.[1];
      if (!head.includes('\r\n\r\n') || key === undefined) return;
      sock.off('data', onHead);
      const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      then(sock);
    };
    sock.on('data', onHead);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as net.AddressInfo).port;
}

const quiet: TransportEvents = { onConnect: () => {}, onData: () => {}, onWritten: () => {}, onError: () => {}, onClosed: () => {} };

t.test('a plain backend, by IP address or by name, gets a raw TCP handle; over TLS, a TLS socket', async (t) => {
  const server = net.createServer((s) => s.on('error', () => {}));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as net.AddressInfo).port;
  const closed: string[] = [];
  const events = (name: string): TransportEvents => ({ ...quiet, onClosed: () => closed.push(name) });
  const v4 = openTransport({ host: '127.0.0.1', port, tls: null }, events('v4'));
  const v6 = openTransport({ host: '::1', port, tls: null }, events('v6'));
  const named = openTransport({ host: 'localhost', port, tls: null }, events('named'));
  const secure = openTransport({ host: '127.0.0.1', port, tls: { rejectUnauthorized: false } }, events('tls'));
  t.ok(v4 instanceof TcpTransport, '127.0.0.1: raw handle');
  t.ok(v6 instanceof TcpTransport, '::1: raw handle');
  t.ok(named instanceof TcpTransport, 'localhost: raw handle (resolved by raw-connect)');
  t.ok(secure instanceof TlsTransport, 'https: tls.TLSSocket');
  for (const x of [v4, v6, named, secure]) x.destroy();
  await until('every transport closed', () => closed.length === 4);
  t.same(closed.sort(), ['named', 'tls', 'v4', 'v6'], 'each reports its close once');
});

t.test('a backend that stops reading: writes are held by the transport, every byte arrives once it reads again', async (t) => {
  const server = await wsServer(t, (ws) => ws.pause());
  const { sink, seen } = recorder();
  const l = leg('127.0.0.1', server.port, sink);
  await until('the upgrade', () => seen.upgraded);
  const sent = createHash('sha256');
  // Small messages, so they are batched into scratch buffers; 48 MiB is more than the loopback
  // socket buffers can take, so most of it waits in writes libuv holds.
  let count = 0;
  for (let total = 0; total < 48 * MiB; count++) {
    const m = Buffer.alloc(1000 + (count % 24), count & 0xff);
    m.writeUInt32LE(count, 0);
    sent.update(m);
    total += m.length;
    l.send(m, true);
  }
  await until('the batch to be written', () => seen.sent === count);
  t.ok(l.bufferedAmount > 8 * MiB, `the transport holds ${(l.bufferedAmount / MiB).toFixed(1)} MiB the kernel could not take`);
  // Messages sent while writes are held go behind them, in order, into reused scratch buffers.
  for (let i = 0; i < 1000; i++, count++) {
    const m = Buffer.alloc(333, i & 0xff);
    sent.update(m);
    l.send(m, true);
  }
  const conn = server.conns[0]!;
  conn.ws.resume();
  await until('every message at the backend', () => conn.count === count, 60_000);
  t.equal(conn.hash.digest('hex'), sent.digest('hex'), 'bytes and order intact');
  await until('the queue to drain', () => l.bufferedAmount === 0);
  t.pass('nothing left queued');
  l.close(1000, '');
});

t.test('a backend that resets the connection after the upgrade: the leg reports it gone, held writes are dropped', async (t) => {
  let peer!: net.Socket;
  const port = await rawServer(t, (sock) => {
    peer = sock;
    sock.pause();
  });
  const { sink, seen } = recorder();
  const l = leg('127.0.0.1', port, sink);
  await until('the upgrade', () => seen.upgraded);
  for (let i = 0; i < 4000; i++) l.send(Buffer.alloc(8000, 1), true);
  await until('writes held', () => l.bufferedAmount > 0);
  peer.resetAndDestroy();
  await until('gone', () => seen.gone);
  t.equal(seen.close, null, 'no close frame came');
  t.equal(l.bufferedAmount, 0, 'nothing counts as queued any more');
  l.send(Buffer.from('after'), true);
  t.pass('sending after the reset is a no-op');
});

t.test('a backend that sends FIN without a close frame: gone; with a close frame first: the close, then gone', async (t) => {
  const finOnly = await rawServer(t, (sock) => sock.end());
  const a = recorder();
  leg('127.0.0.1', finOnly, a.sink);
  await until('gone', () => a.seen.gone);
  t.equal(a.seen.close, null);

  let answer = Buffer.alloc(0);
  const closeThenFin = await rawServer(t, (sock) => {
    sock.on('data', (d) => (answer = Buffer.concat([answer, d])));
    sock.end(Buffer.concat([Buffer.from([0x88, 4, 0x0f, 0xa0]), Buffer.from('ok')]));
  });
  const b = recorder();
  leg('127.0.0.1', closeThenFin, b.sink);
  await until('gone', () => b.seen.gone);
  t.same(b.seen.close, { code: 4000, reason: 'ok' });
  await until('the leg answered the close', () => answer.length >= 8);
  const key = answer.subarray(2, 6);
  t.equal(answer[0], 0x88, 'a close frame went back');
  t.equal(((answer[6]! ^ key[0]!) << 8) | (answer[7]! ^ key[1]!), 4000, 'with the same code');
});

t.test('frames cut across reads: a fragmented message, a header split after its first byte, a ping between', async (t) => {
  const { sink, seen } = recorder();
  let sock!: net.Socket;
  const port = await rawServer(t, (s) => (sock = s));
  const l = leg('127.0.0.1', port, sink);
  await until('the upgrade', () => seen.upgraded);
  // A text fragment and a ping: the ping's arrival shows the leg has read up to there.
  sock.write(Buffer.concat([Buffer.from([0x01, 4]), Buffer.from('frag'), Buffer.from([0x89, 1]), Buffer.from('p')]));
  await until('the ping', () => seen.pings.length === 1);
  // The next fragment's header cut after its first byte; the pause only makes separate reads
  // likely (the assertion holds either way: the parser's own test splits at every byte).
  sock.write(Buffer.from([0x00]));
  await new Promise((r) => setTimeout(r, 20));
  sock.write(Buffer.concat([Buffer.from([4]), Buffer.from('ment')]));
  await new Promise((r) => setTimeout(r, 20));
  // The last fragment: 300 bytes (a 16-bit length), its payload in two writes.
  const tail = Buffer.alloc(300, 0x61);
  sock.write(Buffer.concat([Buffer.from([0x80, 126, 1, 44]), tail.subarray(0, 100)]));
  await new Promise((r) => setTimeout(r, 20));
  sock.write(tail.subarray(100));
  await until('the message', () => seen.messages.length === 1);
  t.equal(seen.messages[0]!.toString(), 'fragment' + 'a'.repeat(300));
  t.equal(seen.failed, null);
  l.terminate();
});

t.test('a backend given by name: resolved, messages both ways, close', async (t) => {
  const server = await wsServer(t, (ws) => ws.on('message', (data: Buffer, binary) => ws.send(data, { binary })));
  const { sink, seen } = recorder();
  const l = leg('localhost', server.port, sink);
  await until('the upgrade', () => seen.upgraded || seen.failed !== null);
  t.equal(seen.failed, null);
  for (const n of [0, 125, 126, 65536, 100_000]) l.send(Buffer.alloc(n, n & 0xff), true);
  await until('every echo', () => seen.messages.length === 5);
  t.same(seen.messages.map((m) => m.length), [0, 125, 126, 65536, 100_000]);
  t.ok(seen.messages.every((m, i) => m.equals(Buffer.alloc(m.length, [0, 125, 126, 65536, 100_000][i]! & 0xff))), 'bytes intact');
  l.close(1000, 'bye');
  await until('gone', () => seen.gone);
  t.same(seen.close, { code: 1000, reason: 'bye' }, "the server's answer to the close");
});

t.test('a plain transport: an unresolvable name reports its error then closes; destroyed while connecting, it closes once', async (t) => {
  const seen: string[] = [];
  const record = (name: string): TransportEvents => ({
    ...quiet,
    onConnect: () => seen.push(`${name} connect`),
    onError: (code) => seen.push(`${name} error ${code}`),
    onClosed: () => seen.push(`${name} closed`),
  });
  const nowhere = openTransport({ host: 'no-such-host.invalid', port: 80, tls: null }, record('nowhere'));
  await until('the failure', () => seen.includes('nowhere closed'), 10_000);
  t.strictSame(seen, ['nowhere error ENOTFOUND', 'nowhere closed'], 'the error first, then one close');
  t.ok(nowhere.closed);
  seen.length = 0;
  const server = net.createServer((s) => s.on('error', () => {}));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const early = openTransport({ host: 'localhost', port: (server.address() as net.AddressInfo).port, tls: null }, record('early'));
  early.destroy();
  early.destroy();
  await new Promise((r) => setTimeout(r, 50));
  t.strictSame(seen, ['early closed'], 'closed once, never connected, no error');
});
