// Sluice's own WebSocket framing (frame-parser.ts, frame-writer.ts) and upstream leg
// (upstream-leg.ts), against a real `ws` server: length boundaries both ways, fragmented messages
// with control frames between the fragments, 10 MiB checked by sha256, every split of the bytes
// across reads, and the refusals a client owes a server that breaks the protocol.

import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { FrameParser, type FrameSink } from '../../src/ws/frame-parser.js';
import { frameSize, writeFrame } from '../../src/ws/frame-writer.js';
import { UpstreamLeg, type LegSink } from '../../src/ws/upstream-leg.js';
import type { UpstreamError } from '../../src/upstream/errors.js';
import { until } from '../helpers/wait.js';
import type { Teardown } from '../helpers/sluice.js';

const MiB = 1024 * 1024;
const BOUNDARIES = [0, 1, 125, 126, 127, 65535, 65536, 65537];

/** What a leg reported, in order. */
interface Seen {
  messages: { data: Buffer; binary: boolean }[];
  pings: Buffer[];
  pongs: Buffer[];
  close: { code: number; reason: string } | null;
  error: { code: number; why: string } | null;
  upgraded: string | null;
  refused: { status: number; body: string } | null;
  failed: UpstreamError | null;
  gone: boolean;
}

function recorder(): { sink: LegSink; seen: Seen } {
  const seen: Seen = { messages: [], pings: [], pongs: [], close: null, error: null, upgraded: null, refused: null, failed: null, gone: false };
  const sink: LegSink = {
    // Views are valid only during the call: keep copies, as uWS does.
    onMessage: (data, binary) => seen.messages.push({ data: Buffer.from(data), binary }),
    onPing: (data) => seen.pings.push(Buffer.from(data)),
    onPong: (data) => seen.pongs.push(Buffer.from(data)),
    onClose: (code, reason) => (seen.close = { code, reason: reason.toString() }),
    onFrameError: (code, why) => (seen.error = { code, why }),
    onUpgrade: (protocol) => (seen.upgraded = protocol),
    onRefusal: (status, _reason, _headers, body) => (seen.refused = { status, body: body.toString() }),
    onHandshakeError: (err) => (seen.failed = err),
    onGone: () => (seen.gone = true),
    corked: (fn) => fn(),
    onSent: () => {},
  };
  return { sink, seen };
}

interface Server {
  port: number;
  /** Connections in order, with what each received. */
  conns: { ws: WebSocket; received: { data: Buffer; binary: boolean }[]; pings: Buffer[]; closed: { code: number; reason: string } | null }[];
}

/** A `ws` server that records what it gets; `onConnection` may act on each connection. */
async function wsServer(t: Teardown, onConnection?: (ws: WebSocket) => void): Promise<Server> {
  const server = http.createServer();
  const wss = new WebSocketServer({ server, maxPayload: 64 * MiB, handleProtocols: (p) => (p.has('b') ? 'b' : false) });
  const s: Server = { port: 0, conns: [] };
  wss.on('connection', (ws) => {
    const conn = { ws, received: [] as { data: Buffer; binary: boolean }[], pings: [] as Buffer[], closed: null as { code: number; reason: string } | null };
    s.conns.push(conn);
    ws.on('message', (data: Buffer, binary) => conn.received.push({ data, binary }));
    ws.on('ping', (d) => conn.pings.push(d));
    ws.on('close', (code, reason) => (conn.closed = { code, reason: reason.toString() }));
    ws.on('error', () => {});
    onConnection?.(ws);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  s.port = (server.address() as net.AddressInfo).port;
  t.teardown(() => {
    for (const c of wss.clients) c.terminate();
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return s;
}

function leg(port: number, sink: LegSink, protocols: string[] = [], maxMessageBytes = 64 * MiB): UpstreamLeg {
  return new UpstreamLeg(sink, {
    host: '127.0.0.1',
    port,
    tls: null,
    head: 'GET /x HTTP/1.1\r\nhost: 127.0.0.1\r\n',
    protocols,
    timeoutMs: 5000,
    maxMessageBytes,
  });
}

async function opened(port: number, protocols: string[] = [], max?: number): Promise<{ l: UpstreamLeg; seen: Seen }> {
  const { sink, seen } = recorder();
  const l = leg(port, sink, protocols, max);
  await until('the upgrade', () => seen.upgraded !== null || seen.failed !== null);
  return { l, seen };
}

t.test('writer: every length boundary reaches a ws server intact, text and binary, masked', async (t) => {
  const server = await wsServer(t);
  const { l } = await opened(server.port);
  const sent: Buffer[] = [];
  for (const n of BOUNDARIES) {
    const bin = randomBytes(n);
    sent.push(bin);
    l.send(bin, true);
    const text = Buffer.from('é'.repeat(n >> 1) + (n & 1 ? 'a' : ''));
    sent.push(text);
    l.send(text, false);
  }
  const conn = server.conns[0]!;
  await until('every message', () => conn.received.length === sent.length);
  conn.received.forEach((m, i) => {
    t.ok(m.data.equals(sent[i]!), `message ${i} (${sent[i]!.length} bytes) intact`);
    t.equal(m.binary, i % 2 === 0);
  });
  l.close(1000, 'done');
  await until('the server to see the close', () => conn.closed !== null);
  t.same(conn.closed, { code: 1000, reason: 'done' });
});

t.test('writer: a frame is masked with a key of its own (the payload is not on the wire as is)', async (t) => {
  const payload = Buffer.alloc(64, 0x41);
  const a = Buffer.alloc(frameSize(64));
  const b = Buffer.alloc(frameSize(64));
  writeFrame(a, 0, 2, -1, payload);
  writeFrame(b, 0, 2, -1, payload);
  t.equal(a[1]! & 0x80, 0x80, 'mask bit set');
  t.notOk(a.subarray(6).equals(payload), 'payload masked');
  t.notOk(a.subarray(2, 6).equals(b.subarray(2, 6)), 'two frames, two keys');
  const key = a.subarray(2, 6);
  t.ok(Buffer.from(a.subarray(6).map((x, i) => x ^ key[i & 3]!)).equals(payload), 'unmasks to the payload');
  // Payloads from 32 bytes are masked a word at a time from a 4-byte boundary of the memory: every
  // alignment, in buffers of their own and in slices of Node's shared pool (any byteOffset).
  for (const n of [31, 32, 33, 34, 35, 127, 128, 1000, 70_000]) {
    const data = randomBytes(n);
    for (let off = 0; off < 16; off++) {
      // At offset 3 with a close code in front (the key continues across it).
      const total = n + (off === 3 ? 2 : 0);
      const dst = off < 8 ? Buffer.alloc(off + frameSize(total)) : Buffer.allocUnsafe(off + frameSize(total));
      const end = writeFrame(dst, off, 2, off === 3 ? 1000 : -1, data);
      if (end !== dst.length) t.fail(`${n} bytes at offset ${off}: wrong length`);
      const hl = total < 126 ? 2 : total < 65536 ? 4 : 10;
      const k = dst.subarray(off + hl, off + hl + 4);
      const plain = Buffer.from(dst.subarray(off + hl + 4).map((x, i) => x ^ k[i & 3]!));
      const expected = off === 3 ? Buffer.concat([Buffer.from([0x03, 0xe8]), data]) : data;
      if (!plain.equals(expected)) t.fail(`${n} bytes at offset ${off} do not unmask`);
    }
  }
  t.pass('every size around the word-wise threshold, at every offset, unmasks to its payload');
});

t.test('parser: every length boundary from a ws server, text and binary', async (t) => {
  const sizes = BOUNDARIES;
  const server = await wsServer(t, (ws) => {
    for (const n of sizes) {
      ws.send(Buffer.alloc(n, n & 0xff), { binary: true });
      ws.send('x'.repeat(n), { binary: false });
    }
  });
  const { seen } = await opened(server.port);
  await until('every message', () => seen.messages.length === sizes.length * 2);
  sizes.forEach((n, i) => {
    t.ok(seen.messages[2 * i]!.data.equals(Buffer.alloc(n, n & 0xff)), `${n}-byte binary`);
    t.equal(seen.messages[2 * i]!.binary, true);
    t.equal(seen.messages[2 * i + 1]!.data.toString(), 'x'.repeat(n), `${n}-byte text`);
    t.equal(seen.messages[2 * i + 1]!.binary, false);
  });
});

t.test('parser: fragmented messages with pings and pongs between the fragments', async (t) => {
  const server = await wsServer(t, (ws) => {
    ws.send('frag', { fin: false, binary: false });
    ws.ping('p1');
    ws.send('men', { fin: false, binary: false });
    ws.pong('q1');
    ws.send('ted', { fin: true, binary: false });
    const big = Buffer.alloc(70_000, 3);
    ws.send(big.subarray(0, 1), { fin: false, binary: true });
    ws.ping('p2');
    ws.send(big.subarray(1, 65_537), { fin: false, binary: true });
    ws.send(big.subarray(65_537), { fin: true, binary: true });
    ws.send('after', { binary: false });
  });
  const { seen } = await opened(server.port);
  await until('three messages', () => seen.messages.length === 3);
  t.equal(seen.messages[0]!.data.toString(), 'fragmented');
  t.equal(seen.messages[0]!.binary, false, 'the first fragment decides the type');
  t.ok(seen.messages[1]!.data.equals(Buffer.alloc(70_000, 3)), '70,000 bytes in three fragments');
  t.equal(seen.messages[2]!.data.toString(), 'after', 'and the next message stands alone');
  t.same(seen.pings.map(String), ['p1', 'p2'], 'pings between fragments are delivered at once');
  t.same(seen.pongs.map(String), ['q1']);
});

t.test('10 MiB each way in messages of every size: sha256 matches', async (t) => {
  const server = await wsServer(t, (ws) => ws.on('message', (data: Buffer, binary) => ws.send(data, { binary })));
  const { l, seen } = await opened(server.port);
  const sent = createHash('sha256');
  let total = 0;
  let count = 0;
  for (let i = 0; total < 10 * MiB; i++) {
    const piece = randomBytes(1 + ((i * 7919) % 200_000));
    sent.update(piece);
    total += piece.length;
    count++;
    l.send(piece, true);
    if (l.bufferedAmount > 4 * MiB) await until('the socket to drain', () => l.bufferedAmount < MiB);
  }
  await until('every echo', () => seen.messages.length === count, 30_000);
  const conn = server.conns[0]!;
  const atServer = createHash('sha256');
  for (const m of conn.received) atServer.update(m.data);
  const back = createHash('sha256');
  for (const m of seen.messages) back.update(m.data);
  const digest = sent.digest('hex');
  t.equal(atServer.digest('hex'), digest, 'what the server got (our masking) matches');
  t.equal(back.digest('hex'), digest, 'what came back (our parsing) matches');
});

t.test('parser: the same frames split at every byte give the same messages', async (t) => {
  // Frames as a server writes them (unmasked): a text, a ping inside a fragmented binary, a close.
  const frames = Buffer.concat([
    Buffer.from([0x81, 5]), Buffer.from('hello'),
    Buffer.from([0x02, 126, 0, 200]), Buffer.alloc(200, 1),
    Buffer.from([0x89, 2]), Buffer.from('hi'),
    Buffer.from([0x80, 127, 0, 0, 0, 0, 0, 1, 0, 0]), Buffer.alloc(65536, 2),
    Buffer.from([0x88, 4, 0x03, 0xe8]), Buffer.from('ok'),
  ]);
  for (const step of [1, 2, 3, 7, 13, 4096]) {
    const got: string[] = [];
    const sink: FrameSink = {
      onMessage: (d, b) => got.push(`${b ? 'bin' : 'text'}:${d.length}:${createHash('sha1').update(d).digest('hex').slice(0, 8)}`),
      onPing: (d) => got.push(`ping:${d}`),
      onPong: () => got.push('pong'),
      onClose: (c, r) => got.push(`close:${c}:${r}`),
      onFrameError: (c, w) => got.push(`error:${c}:${w}`),
    };
    const p = new FrameParser(sink, MiB);
    for (let i = 0; i < frames.length; i += step) p.execute(Buffer.from(frames.subarray(i, i + step)));
    const whole = createHash('sha1').update(Buffer.concat([Buffer.alloc(200, 1), Buffer.alloc(65536, 2)])).digest('hex').slice(0, 8);
    const hello = createHash('sha1').update('hello').digest('hex').slice(0, 8);
    t.same(got, [`text:5:${hello}`, 'ping:hi', `bin:65736:${whole}`, 'close:1000:ok'], `read ${step} byte(s) at a time`);
  }
});

/** A server that answers the upgrade by hand, then writes `bytes` (a misbehaving backend). */
async function rawServer(t: Teardown, bytes: Buffer): Promise<{ port: number; got: () => Buffer }> {
  let got = Buffer.alloc(0);
  const server = net.createServer((sock) => {
    let head = '';
    sock.on('data', (d) => {
      if (head.includes('\r\n\r\n')) {
        got = Buffer.concat([got, d]);
        return;
      }
      head += d.toString('latin1');
      const key = /sec-websocket-key: (\S+)/i.exec(head)?.[1];
      if (!head.includes('\r\n\r\n') || key === undefined) return;
      const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      sock.write(bytes);
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.address() as net.AddressInfo).port, got: () => got };
}

/** The close code in the first frame a raw server received (masked, from Sluice). */
function closeCodeOf(frame: Buffer): number {
  if ((frame[0]! & 0x0f) !== 8) return -1;
  const key = frame.subarray(2, 6);
  return ((frame[6]! ^ key[0]!) << 8) | (frame[7]! ^ key[1]!);
}

for (const [name, bytes, code] of [
  ['a masked frame', Buffer.from([0x82, 0x82, 1, 2, 3, 4, 5, 6]), 1002],
  ['a reserved opcode', Buffer.from([0x83, 0x00]), 1002],
  ['RSV1 without an extension', Buffer.from([0xc2, 0x00]), 1002],
  ['a continuation with nothing to continue', Buffer.from([0x80, 0x00]), 1002],
  ['a fragmented ping', Buffer.from([0x09, 0x00]), 1002],
  ['a ping over 125 bytes', Buffer.concat([Buffer.from([0x89, 126, 0, 126]), Buffer.alloc(126)]), 1002],
  ['a text message that is not UTF-8', Buffer.from([0x81, 2, 0xc3, 0x28]), 1007],
  ['a close frame with an invalid code', Buffer.from([0x88, 2, 0x03, 0xed]), 1002],
  ['a message over the limit', Buffer.concat([Buffer.from([0x82, 126, 0x04, 0x01]), Buffer.alloc(1025)]), 1009],
] as const) {
  t.test(`a backend sending ${name}: refused with ${code}, and told so`, async (t) => {
    const server = await rawServer(t, bytes);
    const { seen } = await opened(server.port, [], 1024);
    await until('the refusal', () => seen.error !== null);
    t.equal(seen.error!.code, code);
    t.equal(seen.messages.length, 0, 'nothing delivered');
    await until('the close frame at the server', () => server.got().length >= 8);
    t.equal(closeCodeOf(server.got()), code, 'the backend gets a close frame with that code');
  });
}

t.test('handshake: subprotocol checked, refusals read as HTTP, a wrong accept or no server fails', async (t) => {
  const server = await wsServer(t);
  const chose = await opened(server.port, ['a', 'b']);
  t.equal(chose.seen.upgraded, 'b', "the server's choice");
  chose.l.close(1000, '');
  const none = await opened(server.port, ['z']);
  t.equal(none.seen.upgraded, '', 'no subprotocol chosen is accepted (the client decides)');
  none.l.close(1000, '');

  const refuser = http.createServer((_req, res) => {
    res.writeHead(401, { 'x-why': 'no' });
    res.write('go ');
    res.end('away');
  });
  await new Promise<void>((r) => refuser.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => (refuser.closeAllConnections(), refuser.close(() => r()))));
  const r = recorder();
  leg((refuser.address() as net.AddressInfo).port, r.sink);
  await until('the refusal', () => r.seen.refused !== null);
  t.same(r.seen.refused, { status: 401, body: 'go away' }, 'a chunked refusal body is decoded');

  const liar = net.createServer((sock) => sock.once('data', () => sock.write('HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: nope\r\n\r\n')));
  await new Promise<void>((r) => liar.listen(0, '127.0.0.1', r));
  const l = recorder();
  leg((liar.address() as net.AddressInfo).port, l.sink);
  await until('the failure', () => l.seen.failed !== null);
  t.equal(l.seen.failed!.kind, 'protocol');
  t.match(l.seen.failed!.message, /Sec-WebSocket-Accept/);

  const port = (liar.address() as net.AddressInfo).port;
  await new Promise<void>((r) => liar.close(() => r()));
  const gone = recorder();
  leg(port, gone.sink);
  await until('the failure', () => gone.seen.failed !== null);
  t.equal(gone.seen.failed!.kind, 'connect');
});

t.test('a backend that vanishes after the upgrade: the leg reports it gone', async (t) => {
  const server = await wsServer(t, (ws) => setImmediate(() => ws.terminate()));
  const { seen } = await opened(server.port);
  await until('gone', () => seen.gone);
  t.equal(seen.close, null, 'no close frame came');
});
