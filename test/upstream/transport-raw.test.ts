// RawTransport (a plain upstream connection on a raw libuv TCP handle) against real loopback
// peers: the bytes the backend receives (UTF-8 heads, bodies written while connecting, corked
// batches, chunked framing, big bodies that go async), what it reports (drain, FIN, reset,
// refused, unknown host), pausing reads, and destroy at every stage.

import t, { type Test } from 'tap';
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { RawTransport } from '../../src/upstream/transport-raw.js';
import type { TransportSink } from '../../src/upstream/transport.js';
import { refusedPort } from '../helpers/backends.js';

/** A sink that records every call; `data` collects the bytes read (copied: the buffer is shared). */
class Recorder implements TransportSink {
  readonly events: string[] = [];
  readonly chunks: Buffer[] = [];
  /** Set while a transport method runs: a sink call then would be a re-entrant report. */
  inCall = false;
  reentrant = 0;
  readonly closed: Promise<void>;
  #closed!: () => void;
  onDataHook: ((chunk: Buffer) => void) | null = null;

  constructor() {
    this.closed = new Promise((resolve) => (this.#closed = resolve));
  }
  get data(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }
  #note(e: string): void {
    if (this.inCall) this.reentrant++;
    this.events.push(e);
  }
  onConnect(): void {
    this.#note('connect');
  }
  onData(chunk: Buffer): void {
    if (this.inCall) this.reentrant++;
    this.chunks.push(Buffer.from(chunk));
    this.onDataHook?.(chunk);
  }
  onDrain(): void {
    this.#note('drain');
  }
  onEnd(): void {
    this.#note('end');
  }
  onError(detail: string): void {
    this.#note(`error ${detail}`);
  }
  onClose(): void {
    this.#note('close');
    this.#closed();
  }
}

interface Peer {
  socket: net.Socket;
  bytes: Buffer[];
  readonly text: string;
}

/** A loopback server; `onPeer` gets each accepted socket. `pause`: accept without reading. */
async function server(t: Test, opts: { pause?: boolean } = {}, onPeer: (p: Peer) => void = () => {}): Promise<{ port: number; peers: Peer[] }> {
  const peers: Peer[] = [];
  const srv = net.createServer({ pauseOnConnect: opts.pause ?? false }, (socket) => {
    const peer: Peer = {
      socket,
      bytes: [],
      get text() {
        return Buffer.concat(this.bytes).toString('latin1');
      },
    };
    peers.push(peer);
    socket.on('data', (d: Buffer) => peer.bytes.push(d));
    socket.on('error', () => {});
    onPeer(peer);
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.teardown(() => {
    for (const p of peers) p.socket.destroy();
    srv.close();
  });
  return { port: (srv.address() as AddressInfo).port, peers };
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const stop = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > stop) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function open(t: Test, host: string, port: number): { tr: RawTransport; sink: Recorder } {
  const sink = new Recorder();
  const tr = new RawTransport(host, port, sink);
  t.teardown(() => tr.destroy());
  return { tr, sink };
}

/** Runs a transport call with the sink watching for reports made from inside it. */
function call<T>(sink: Recorder, fn: () => T): T {
  sink.inCall = true;
  try {
    return fn();
  } finally {
    sink.inCall = false;
  }
}

t.test('writes made while connecting go out in order once connected; strings as UTF-8', async (t) => {
  const be = await server(t);
  const { tr, sink } = open(t, '127.0.0.1', be.port);
  // č is U+010D: latin1 would send its low byte, 0x0D, a bare CR inside the header.
  const head = 'GET /caf\u00e9 HTTP/1.1\r\nX-Name: \u010d\u{1f600}\r\n\r\n';
  t.equal(call(sink, () => tr.writeText(head)), true, 'a small held write does not ask for drain');
  t.equal(call(sink, () => tr.writeBytes(Buffer.from([0, 1, 2, 0xff]))), true);
  t.equal(call(sink, () => tr.writeChunk(Buffer.from('abc'))), true);
  t.equal(tr.needsDrain, false);
  const expected = Buffer.concat([Buffer.from(head, 'utf8'), Buffer.from([0, 1, 2, 0xff]), Buffer.from('3\r\nabc\r\n')]);
  await until(() => be.peers[0] !== undefined && Buffer.concat(be.peers[0].bytes).length >= expected.length, 'the held bytes');
  t.ok(Buffer.concat(be.peers[0]!.bytes).equals(expected), 'the exact octets, in order');
  t.ok(Buffer.concat(be.peers[0]!.bytes).includes(Buffer.from([0xc4, 0x8d])), 'U+010D went out as C4 8D');
  t.strictSame(sink.events, ['connect']);
  t.equal(sink.reentrant, 0);
});

t.test('connected: each write goes out at once; a corked batch goes out together at uncork', async (t) => {
  const be = await server(t);
  const { tr, sink } = open(t, '127.0.0.1', be.port);
  await until(() => sink.events.includes('connect') && be.peers.length === 1, 'the connection');
  t.equal(tr.writeText('one;'), true);
  await until(() => be.peers[0]!.text === 'one;', 'an uncorked write');
  tr.cork();
  tr.cork();
  tr.writeText('two;');
  tr.writeBytes(Buffer.from('three;'));
  tr.writeChunk(Buffer.from('four'));
  tr.writeText('\u00e9;');
  tr.uncork();
  t.equal(be.peers[0]!.text, 'one;', 'nested cork: still held after the inner uncork');
  tr.uncork();
  const want = 'one;two;three;4\r\nfour\r\n' + Buffer.from('\u00e9;', 'utf8').toString('latin1');
  await until(() => be.peers[0]!.text.length >= want.length, 'the batch');
  t.equal(be.peers[0]!.text, want);
  // A batch of strings only (pipelined heads) is joined into one write.
  tr.cork();
  tr.writeText('GET /a HTTP/1.1\r\n\r\n');
  tr.writeText('GET /b HTTP/1.1\r\n\r\n');
  tr.uncork();
  await until(() => be.peers[0]!.text.endsWith('GET /b HTTP/1.1\r\n\r\n'), 'the string batch');
  t.ok(be.peers[0]!.text.endsWith('GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n'));
  t.equal(tr.needsDrain, false);
  t.strictSame(sink.events, ['connect'], 'no drain owed: no write ever returned false');
});

t.test('a big body the kernel cannot take at once: not drained until every byte is out, intact', async (t) => {
  const be = await server(t, { pause: true });
  const { tr, sink } = open(t, '127.0.0.1', be.port);
  await until(() => sink.events.includes('connect') && be.peers.length === 1, 'the connection');
  // Distinct bytes per piece, so a piece freed or reused before libuv sent it would show.
  const pieces = [0x41, 0x42, 0x43].map((c) => Buffer.alloc(8 << 20, c));
  const results: boolean[] = [];
  results.push(call(sink, () => tr.writeText('PUT / HTTP/1.1\r\n\r\n')));
  for (const p of pieces) results.push(call(sink, () => tr.writeBytes(p)));
  results.push(call(sink, () => tr.writeChunk(Buffer.alloc(1 << 20, 0x44))));
  t.equal(results[0], true, 'the head went at once');
  t.equal(results[1], false, '8 MiB to a reader that reads nothing cannot all go at once');
  t.equal(results.slice(2).every((r) => r === false), true, 'later writes queue behind it');
  t.equal(tr.needsDrain, true);
  // The caller's references are gone: only the transport keeps the queued bytes alive.
  pieces.length = 0;
  (globalThis as { gc?: () => void }).gc?.();
  t.strictSame(sink.events, ['connect'], 'no drain while bytes are queued');
  let n = 0;
  const seen: Buffer[] = [];
  be.peers[0]!.socket.removeAllListeners('data');
  be.peers[0]!.socket.on('data', (d: Buffer) => {
    n += d.length;
    seen.push(d);
  });
  be.peers[0]!.socket.resume();
  const total = 'PUT / HTTP/1.1\r\n\r\n'.length + 3 * (8 << 20) + '100000\r\n'.length + (1 << 20) + 2;
  await until(() => n >= total && sink.events.includes('drain'), 'every byte and the drain', 20_000);
  t.equal(n, total);
  const all = Buffer.concat(seen);
  const head = 'PUT / HTTP/1.1\r\n\r\n'.length;
  t.equal(all.toString('latin1', 0, head), 'PUT / HTTP/1.1\r\n\r\n');
  for (let i = 0; i < 3; i++) {
    const from = head + i * (8 << 20);
    const piece = all.subarray(from, from + (8 << 20));
    t.equal(piece.every((b) => b === 0x41 + i), true, `piece ${i} intact`);
  }
  const chunk = all.subarray(head + 3 * (8 << 20));
  t.equal(chunk.toString('latin1', 0, 8), '100000\r\n', 'chunk size line');
  t.equal(chunk.subarray(8, 8 + (1 << 20)).every((b) => b === 0x44), true, 'chunk data');
  t.equal(chunk.toString('latin1', 8 + (1 << 20)), '\r\n');
  t.strictSame(sink.events, ['connect', 'drain'], 'one drain, once everything was out');
  t.equal(tr.needsDrain, false);
  t.equal(tr.writeText('after'), true, 'drained: a small write goes at once again');
  t.equal(sink.reentrant, 0);
});

t.test('more held while connecting than net.Socket would buffer: not drained until sent', async (t) => {
  const be = await server(t);
  const { tr, sink } = open(t, '127.0.0.1', be.port);
  t.equal(tr.writeBytes(Buffer.alloc(10 * 1024, 1)), true);
  t.equal(tr.writeBytes(Buffer.alloc(10 * 1024, 2)), false, 'past 16 KiB held: wait for drain');
  t.equal(tr.needsDrain, true);
  await until(() => sink.events.includes('drain'), 'the drain after connecting');
  t.strictSame(sink.events, ['connect', 'drain']);
  await until(() => be.peers[0] !== undefined && Buffer.concat(be.peers[0].bytes).length === 20 * 1024, 'the bytes');
  const got = Buffer.concat(be.peers[0]!.bytes);
  t.equal(got[0], 1);
  t.equal(got[20 * 1024 - 1], 2);
});

t.test('the backend sends FIN: the bytes before it, then end, then close', async (t) => {
  const be = await server(t, {}, (p) => p.socket.end('HTTP/1.1 200 OK\r\n\r\nbye'));
  const { sink } = open(t, '127.0.0.1', be.port);
  await sink.closed;
  t.equal(sink.data, 'HTTP/1.1 200 OK\r\n\r\nbye');
  t.strictSame(sink.events, ['connect', 'end', 'close']);
});

t.test('the backend resets mid-response: the bytes before it, then the error, then close', async (t) => {
  const be = await server(t, {}, (p) => {
    p.socket.once('data', () => p.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart'));
  });
  const { tr, sink } = open(t, '127.0.0.1', be.port);
  // The backend resets once the first bytes have been read here.
  sink.onDataHook = (chunk) => {
    if (chunk.includes('part')) be.peers[0]!.socket.resetAndDestroy();
  };
  tr.writeText('GET / HTTP/1.1\r\n\r\n');
  await sink.closed;
  t.equal(sink.data, 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart');
  t.strictSame(sink.events, ['connect', 'error ECONNRESET', 'close']);
});

t.test('a write to a reset connection is reported later, never from inside the write', async (t) => {
  let peer!: net.Socket;
  const be = await server(t, {}, (p) => (peer = p.socket));
  const { tr, sink } = open(t, '127.0.0.1', be.port);
  await until(() => sink.events.includes('connect') && peer !== undefined, 'the connection');
  tr.pause(); // so the reset is not seen by a read first
  peer.resetAndDestroy();
  await until(() => peer.destroyed, 'the reset');
  // The first write after an RST may still be accepted by the kernel; keep writing until one fails.
  await until(() => {
    call(sink, () => tr.writeText('GET / HTTP/1.1\r\n\r\n'));
    return sink.events.some((e) => e.startsWith('error'));
  }, 'the write failure to be reported');
  await sink.closed;
  t.equal(sink.reentrant, 0, 'nothing was reported from inside a write call');
  t.match(sink.events.find((e) => e.startsWith('error')), /^error (EPIPE|ECONNRESET)$/);
  t.equal(sink.events.at(-1), 'close');
});

t.test('pause() stops reading until resume(): nothing is delivered meanwhile, nothing is lost', async (t) => {
  const size = 32 << 20;
  let peer!: net.Socket;
  const be = await server(t, {}, (p) => (peer = p.socket));
  const { tr, sink } = open(t, '127.0.0.1', be.port);
  await until(() => sink.events.includes('connect') && peer !== undefined, 'the connection');
  let pausedAt = -1;
  sink.onDataHook = () => {
    if (pausedAt < 0) {
      tr.pause();
      pausedAt = sink.chunks.length;
    }
  };
  const big = Buffer.alloc(size, 0x7a);
  const flushed = new Promise<void>((resolve) => peer.write(big, () => resolve()));
  await until(() => pausedAt > 0, 'the first read');
  // While paused the backend cannot finish writing 32 MiB (the kernel buffers are smaller), and
  // no read is delivered: wait until its send queue has stopped shrinking for a while.
  let last = -1;
  let still = 0;
  await until(() => {
    const q = peer.writableLength;
    still = q === last ? still + 1 : 0;
    last = q;
    return still >= 25;
  }, 'the backend to be blocked');
  t.ok(peer.writableLength > 0, 'the backend still has bytes queued');
  t.equal(sink.chunks.length, pausedAt, 'no read delivered while paused');
  tr.resume();
  await flushed;
  await until(() => sink.chunks.reduce((s, c) => s + c.length, 0) === size, 'the rest after resume()');
  t.equal(Buffer.concat(sink.chunks).every((b) => b === 0x7a), true);
});

t.test('connect failures: refused, an unknown host name', async (t) => {
  const port = await refusedPort();
  const refused = open(t, '127.0.0.1', port);
  t.equal(refused.tr.writeText('GET / HTTP/1.1\r\n\r\n'), true, 'held until connected');
  await refused.sink.closed;
  t.strictSame(refused.sink.events, ['error ECONNREFUSED', 'close']);

  const unknown = open(t, 'no-such-host.invalid', 80);
  await unknown.sink.closed;
  t.equal(unknown.sink.events.length, 2);
  t.match(unknown.sink.events[0], /^error (ENOTFOUND|EAI_AGAIN)$/);
  t.equal(unknown.sink.events[1], 'close');
});

t.test('a host name is resolved and connected to', async (t) => {
  const be = await server(t);
  const { tr, sink } = open(t, 'localhost', be.port);
  tr.writeText('hello');
  await until(() => be.peers[0] !== undefined && be.peers[0].text === 'hello', 'the bytes via localhost');
  t.strictSame(sink.events, ['connect']);
});

t.test('destroy() at any stage: close exactly once, nothing else', async (t) => {
  const be = await server(t);
  for (const [host, when] of [
    ['localhost', 'resolving'],
    ['127.0.0.1', 'connecting'],
    ['127.0.0.1', 'connected'],
  ] as const) {
    const sink = new Recorder();
    const tr = new RawTransport(host, be.port, sink);
    tr.writeText('x');
    if (when === 'connected') await until(() => sink.events.includes('connect'), 'the connection');
    call(sink, () => tr.destroy());
    tr.destroy();
    await sink.closed;
    // A late lookup answer or connect completion must not surface: a second connection started
    // after this one has connected by the time it has.
    const probe = new Recorder();
    const other = new RawTransport(host, be.port, probe);
    await until(() => probe.events.includes('connect'), 'a later connection');
    other.destroy();
    t.strictSame(sink.events, when === 'connected' ? ['connect', 'close'] : ['close'], when);
    t.equal(sink.reentrant, 0, `${when}: close is reported later`);
    t.equal(tr.writeText('late'), true, 'a write after destroy is ignored');
  }
});
