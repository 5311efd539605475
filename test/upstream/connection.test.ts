// Connection and Pool against real loopback backends that write scripted raw bytes: exchanges,
// keep-alive reuse, typed failures (protocol, connect, timeout, reset), request body framing as the
// backend sees it, pool limits and FIFO waiters, and the OPEN_CONNS column.

import t, { type Test } from 'tap';
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { Pool, type PoolOptions } from '../../src/upstream/pool.js';
import type { Connection } from '../../src/upstream/connection.js';
import type { ExchangeHandler } from '../../src/upstream/exchange.js';
import type { UpstreamError } from '../../src/upstream/errors.js';
import { Framing, type FramingKind } from '../../src/upstream/response-parser.js';
import { SharedTable } from '../../src/state/table.js';
import { C } from '../../src/state/layout.js';

// ---------------------------------------------------------------------------------------------
// Backends

/** One accepted connection on the backend side. */
interface Peer {
  socket: net.Socket;
  /** Everything received on it, latin1. */
  data: string;
  closed: boolean;
}

interface Backend {
  port: number;
  /** Accepted connections, in order. */
  peers: Peer[];
}

/** A loopback server that calls `onData` with the peer after every read. */
async function backend(t: Test, onData: (peer: Peer) => void = () => {}): Promise<Backend> {
  const peers: Peer[] = [];
  const server = net.createServer((socket) => {
    const peer: Peer = { socket, data: '', closed: false };
    peers.push(peer);
    socket.on('data', (d: Buffer) => {
      peer.data += d.toString('latin1');
      onData(peer);
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      peer.closed = true;
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const p of peers) p.socket.destroy();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, peers };
}

/**
 * A backend for bodiless requests: `respond` is called once per complete request head with the
 * peer, the request's index on that connection, and the request text; a string it returns is
 * written back as is.
 */
async function scripted(
  t: Test,
  respond: (peer: Peer, index: number, request: string) => string | null,
): Promise<Backend> {
  const answered = new Map<Peer, number>();
  return backend(t, (peer) => {
    const requests = peer.data.split('\r\n\r\n').slice(0, -1);
    for (let i = answered.get(peer) ?? 0; i < requests.length; i++) {
      answered.set(peer, i + 1);
      const out = respond(peer, i, `${requests[i]!}\r\n\r\n`);
      if (out !== null && !peer.socket.destroyed) peer.socket.write(out, 'latin1');
    }
  });
}

/** A port with nothing listening on it (bound once, then released). */
async function deadPort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  server.close();
  await once(server, 'close');
  return port;
}

/** Poll until `cond` holds; fails loudly instead of hanging. */
async function until(cond: () => boolean, what: string, ms = 2000): Promise<void> {
  const stop = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > stop) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

// ---------------------------------------------------------------------------------------------
// A recording ExchangeHandler

interface ExchangeOptions {
  isHead?: boolean;
  /** Request body pieces, written as soon as the connection arrives, then ended. */
  body?: Buffer[];
  chunked?: boolean;
  /** Leave the body open after writing the pieces (the test ends it). */
  holdBody?: boolean;
  /** Return value for onResponseData (false pauses the upstream). */
  onData?: (chunk: Buffer) => boolean;
  /** Runs inside onResponseEnd. */
  onEnd?: () => void;
  /** Pipelining depth this exchange allows (1 = never pipelined). */
  depth?: number;
}

const SLOT = 3;
const GET = (path = '/'): string => `GET ${path} HTTP/1.1\r\nHost: backend\r\n\r\n`;

type Outcome = 'end' | 'error' | 'pool-full';

class Exchange implements ExchangeHandler {
  readonly head: string;
  readonly opts: ExchangeOptions;
  /** Calls in order; data calls are counted in `chunks` instead. */
  readonly events: string[] = [];
  readonly chunks: Buffer[] = [];
  status = 0;
  reason = '';
  headers: string[] = [];
  framing: FramingKind | -1 = -1;
  contentLength = -2;
  error: UpstreamError | null = null;
  conn: Connection | null = null;
  /** writeBody's return values. */
  writes: boolean[] = [];
  corks = 0;
  cancelled = false;
  readonly done: Promise<Outcome>;
  #settle!: (o: Outcome) => void;

  constructor(head: string, opts: ExchangeOptions = {}) {
    this.head = head;
    this.opts = opts;
    this.done = new Promise((resolve) => (this.#settle = resolve));
  }

  get body(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }

  onConnection(conn: Connection): void {
    this.events.push('connection');
    this.conn = conn;
    const { body, chunked = false } = this.opts;
    conn.dispatch(this, this.head, this.opts.isHead ?? false, body !== undefined);
    if (body === undefined) return;
    for (const piece of body) this.writes.push(conn.writeBody(piece, chunked));
    if (!this.opts.holdBody) conn.endBody(chunked);
  }
  onPoolFull(): void {
    this.events.push('pool-full');
    this.#settle('pool-full');
  }
  onResponseStart(status: number, reason: string, headers: string[], framing: FramingKind, contentLength: number): void {
    this.events.push(`start ${status}`);
    this.status = status;
    this.reason = reason;
    this.headers = headers;
    this.framing = framing;
    this.contentLength = contentLength;
  }
  onResponseData(chunk: Buffer): boolean {
    this.chunks.push(Buffer.from(chunk));
    return this.opts.onData ? this.opts.onData(chunk) : true;
  }
  onResponseEnd(): void {
    this.events.push('end');
    this.opts.onEnd?.();
    this.#settle('end');
  }
  onResponseError(err: UpstreamError): void {
    this.events.push(`error ${err.kind}`);
    this.error = err;
    this.#settle('error');
  }
  onRequeue(): void {
    this.events.push('requeue');
    this.conn = null;
    this.requeued?.();
  }
  /** Set by a test to act on onRequeue (typically: acquire again). */
  requeued: (() => void) | null = null;
  get pipelineDepth(): number {
    return this.opts.depth ?? 1;
  }
  onRequestDrain(): void {
    this.events.push('drain');
  }
  cork(fn: () => void): void {
    this.corks++;
    fn();
  }
}

function makePool(t: Test, port: number, options: Partial<PoolOptions> = {}, table = new SharedTable()): { pool: Pool; table: SharedTable } {
  const pool = new Pool(table, {
    host: '127.0.0.1',
    port,
    slot: SLOT,
    max: 4,
    maxWaiting: 4,
    connectTimeoutMs: 5000,
    requestTimeoutMs: 5000,
    idleTimeoutMs: 60_000,
    pipelineHolMs: 20,
    tls: null,
    ...options,
  });
  t.teardown(() => pool.close());
  return { pool, table };
}

/** Acquire and wait for the exchange to finish one way or another. */
async function exchange(pool: Pool, ex: Exchange): Promise<Outcome> {
  pool.acquire(ex);
  return ex.done;
}

const OK = (body: string, extra = ''): string => `HTTP/1.1 200 OK\r\n${extra}Content-Length: ${body.length}\r\n\r\n${body}`;

// ---------------------------------------------------------------------------------------------

t.test('a full exchange through the pool', async (t) => {
  const be = await scripted(t, () => 'HTTP/1.1 200 Fine\r\nX-Thing: a b\r\nContent-Length: 5\r\n\r\nhello');
  const { pool } = makePool(t, be.port);
  const ex = new Exchange(GET('/full'));
  t.equal(await exchange(pool, ex), 'end');
  t.strictSame(ex.events, ['connection', 'start 200', 'end']);
  t.equal(ex.reason, 'Fine');
  t.strictSame(ex.headers, ['x-thing', 'a b', 'content-length', '5']);
  t.equal(ex.framing, Framing.LENGTH);
  t.equal(ex.contentLength, 5);
  t.equal(ex.body, 'hello');
  t.ok(ex.corks >= 1, 'response bytes were parsed inside the handler cork');
  t.equal(be.peers[0]!.data, GET('/full'), 'the backend saw the request head byte for byte');
  t.equal(ex.conn!.uses, 1);
  t.equal(pool.size, 1);
  t.equal(pool.idle, 1, 'the connection went back to the pool');
});

t.test('keep-alive: the next exchange reuses the socket, idle connections are LIFO', async (t) => {
  const be = await scripted(t, (_peer, i, req) => OK(`${i}:${req.split(' ')[1]}`));
  const { pool } = makePool(t, be.port);
  const a = new Exchange(GET('/a'));
  const b = new Exchange(GET('/b'));
  await exchange(pool, a);
  t.equal(a.conn!.uses, 1);
  await exchange(pool, b);
  t.equal(b.conn, a.conn, 'same Connection');
  t.equal(b.conn!.uses, 2);
  t.equal(be.peers.length, 1, 'the backend saw one connection');
  t.equal(be.peers[0]!.data, GET('/a') + GET('/b'));
  t.equal(a.body, '0:/a');
  t.equal(b.body, '1:/b');

  // Two busy at once, released in a known order: the last released is the first reused.
  const be2 = await backend(t);
  const { pool: pool2 } = makePool(t, be2.port);
  const first = new Exchange(GET('/1'));
  const second = new Exchange(GET('/2'));
  pool2.acquire(first);
  pool2.acquire(second);
  const peerOf = (ex: Exchange): Peer | undefined => be2.peers.find((p) => p.data === ex.head);
  await until(() => peerOf(first) !== undefined && peerOf(second) !== undefined, 'both requests');
  peerOf(first)!.socket.write(OK('1'));
  await first.done;
  peerOf(second)!.socket.write(OK('2'));
  await second.done;
  t.equal(pool2.idle, 2);
  const third = new Exchange(GET('/3'));
  pool2.acquire(third);
  t.equal(third.conn, second.conn, 'most recently released connection reused first');
});

t.test('HEAD, 1xx and chunked responses over a reused connection', async (t) => {
  const be = await scripted(t, (_peer, i) => {
    if (i === 0) return 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n';
    if (i === 1) return 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n';
    return OK('last');
  });
  const { pool } = makePool(t, be.port);
  const head = new Exchange('HEAD / HTTP/1.1\r\nHost: b\r\n\r\n', { isHead: true });
  await exchange(pool, head);
  t.strictSame(head.events, ['connection', 'start 200', 'end']);
  t.equal(head.framing, Framing.NONE);
  t.equal(head.contentLength, 100, 'Content-Length of the HEAD response is passed on');
  const chunked = new Exchange(GET('/c'));
  await exchange(pool, chunked);
  t.strictSame(chunked.events, ['connection', 'start 200', 'end'], 'the interim response is not reported');
  t.equal(chunked.framing, Framing.CHUNKED);
  t.equal(chunked.body, 'abc');
  const last = new Exchange(GET('/l'));
  await exchange(pool, last);
  t.equal(last.body, 'last', 'the connection stayed in step across all three');
  t.equal(be.peers.length, 1);
});

t.test('responses that end the connection are not reused', async (t) => {
  const be = await scripted(t, (peer, _i, req) => {
    if (req.startsWith('GET /close-delimited ')) {
      peer.socket.end('HTTP/1.1 200 OK\r\n\r\nuntil the end');
      return null;
    }
    if (req.startsWith('GET /connection-close ')) return OK('bye', 'Connection: close\r\n');
    if (req.startsWith('GET /stray ')) return OK('ok') + 'HTTP/1.1 200 OK\r\n';
    return OK('fresh');
  });
  const { pool } = makePool(t, be.port);
  for (const path of ['/close-delimited', '/connection-close', '/stray']) {
    const ex = new Exchange(GET(path));
    await exchange(pool, ex);
    t.strictSame(ex.events, ['connection', 'start 200', 'end'], `${path} completes`);
    const next = new Exchange(GET('/next'));
    await exchange(pool, next);
    t.not(next.conn, ex.conn, `${path}: the next exchange gets a new connection`);
    t.equal(next.body, 'fresh');
  }
  // Each ending response was the last thing on its connection; each /next kept its own alive.
  t.strictSame(
    be.peers.map((p) => p.data),
    [GET('/close-delimited'), GET('/next') + GET('/connection-close'), GET('/next') + GET('/stray'), GET('/next')],
  );
});

t.test('malformed response: protocol error, socket not reused', async (t) => {
  const be = await scripted(t, (_peer, _i, req) =>
    req.startsWith('GET /bad ') ? 'HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n' : OK('good'),
  );
  const { pool, table } = makePool(t, be.port);
  const bad = new Exchange(GET('/bad'));
  t.equal(await exchange(pool, bad), 'error');
  t.strictSame(bad.events, ['connection', 'error protocol']);
  t.equal(bad.error!.kind, 'protocol');
  t.equal(bad.error!.status, 502);
  t.match(bad.error!.message, /status/);
  t.equal(bad.error!.beforeResponse, false, 'response bytes had arrived');
  await until(() => be.peers[0]!.closed, 'the bad connection to close');
  await until(() => pool.size === 0, 'the pool to forget it');
  t.equal(table.get(C.OPEN_CONNS, SLOT), 0);
  const good = new Exchange(GET('/good'));
  await exchange(pool, good);
  t.equal(good.body, 'good');
  t.equal(be.peers.length, 2, 'a new connection for the next exchange');
});

t.test('a throwing handler ends its own exchange, not the process', async (t) => {
  const be = await scripted(t, () => OK('x'));
  const { pool } = makePool(t, be.port);
  const ex = new Exchange(GET());
  ex.onResponseStart = () => {
    throw new Error('handler bug');
  };
  t.equal(await exchange(pool, ex), 'error');
  t.equal(ex.error!.kind, 'protocol');
  t.match(ex.error!.message, /internal: handler bug/);
  await until(() => pool.size === 0, 'the connection to be dropped');
});

t.test('connection refused: connect error, nothing counted open', async (t) => {
  const port = await deadPort();
  const { pool, table } = makePool(t, port);
  const ex = new Exchange(GET());
  t.equal(await exchange(pool, ex), 'error');
  t.strictSame(ex.events, ['connection', 'error connect']);
  t.equal(ex.error!.status, 502);
  t.equal(ex.error!.beforeResponse, true);
  t.match(ex.error!.message, /ECONNREFUSED/);
  await until(() => pool.size === 0, 'the failed connection to be forgotten');
  t.equal(table.get(C.OPEN_CONNS, SLOT), 0);
});

t.test('connect deadline: a connection still connecting when swept is a connect error', async (t) => {
  const be = await scripted(t, () => OK('late'));
  const { pool, table } = makePool(t, be.port, { connectTimeoutMs: 3000 });
  const ex = new Exchange(GET());
  pool.acquire(ex);
  // Still synchronous: the socket cannot have connected yet.
  t.notOk(ex.conn!.connected);
  pool.sweep(table.now());
  t.equal(ex.error, null, 'not before the deadline');
  pool.sweep(table.now() + 3000);
  t.strictSame(ex.events, ['connection', 'error connect']);
  t.match(ex.error!.message, /timed out/);
  t.equal(ex.error!.beforeResponse, true);
  await until(() => pool.size === 0, 'the connection to be dropped');
  t.equal(table.get(C.OPEN_CONNS, SLOT), 0, 'never counted open');
});

t.test('backend accepts but never answers: timeout at the request deadline', async (t) => {
  const be = await backend(t);
  const { pool, table } = makePool(t, be.port, { requestTimeoutMs: 4000 });
  const ex = new Exchange(GET('/silent'));
  pool.acquire(ex);
  await until(() => be.peers[0]?.data === GET('/silent'), 'the request to arrive');
  t.ok(ex.conn!.connected);
  t.equal(table.get(C.OPEN_CONNS, SLOT), 1);
  // A fake clock: the deadline is table time, so sweep with the time we want it to be.
  pool.sweep(table.now());
  pool.sweep(table.now() + 3000);
  t.equal(ex.error, null, 'still waiting before the deadline');
  pool.sweep(table.now() + 4000);
  t.strictSame(ex.events, ['connection', 'error timeout']);
  t.equal(ex.error!.status, 504);
  t.equal(ex.error!.beforeResponse, true);
  await until(() => be.peers[0]!.closed, 'the backend to see the socket closed');
  await until(() => pool.size === 0, 'the pool to forget it');
  t.equal(table.get(C.OPEN_CONNS, SLOT), 0);
});

t.test('mid-body, the request timeout applies between reads', async (t) => {
  t.test('a body that keeps coming within the timeout completes', async (t) => {
    const be = await scripted(t, () => 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab');
    const { pool, table } = makePool(t, be.port, { requestTimeoutMs: 1000 });
    const ex = new Exchange(GET());
    pool.acquire(ex);
    await until(() => ex.chunks.length > 0, 'the first body bytes');
    pool.sweep(table.now() + 500);
    t.equal(ex.error, null, 'a gap shorter than the timeout is not a timeout');
    be.peers[0]!.socket.write('cd');
    await ex.done;
    t.equal(ex.body, 'abcd');
  });

  t.test('a body that stalls past the timeout is a timeout after the response began', async (t) => {
    const be = await scripted(t, () => 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab');
    const { pool, table } = makePool(t, be.port, { requestTimeoutMs: 1000 });
    const ex = new Exchange(GET());
    pool.acquire(ex);
    await until(() => ex.chunks.length > 0, 'the first body bytes');
    pool.sweep(table.now() + 1_500);
    t.equal(await ex.done, 'error');
    t.equal(ex.error!.kind, 'timeout');
    t.equal(ex.error!.beforeResponse, false, 'not retry-safe: the response had started');
  });

  t.test('no deadline while paused for a slow client', async (t) => {
    const be = await scripted(t, () => 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab');
    const { pool, table } = makePool(t, be.port, { requestTimeoutMs: 1000 });
    const ex = new Exchange(GET());
    pool.acquire(ex);
    await until(() => ex.chunks.length > 0, 'the first body bytes');
    ex.conn!.pause();
    pool.sweep(table.now() + 60_000);
    t.equal(ex.error, null, 'waiting on the client is not the backend stalling');
    ex.conn!.resume();
    be.peers[0]!.socket.write('cd');
    await ex.done;
    t.equal(ex.body, 'abcd');
  });
});

t.test('a reused idle connection the backend closed: reset before the response', async (t) => {
  t.test('closed (FIN) right after the previous response', async (t) => {
    const be = await scripted(t, (peer, i) => {
      if (i === 0) peer.socket.end(OK('first')); // keep-alive response, then the backend closes
      return null;
    });
    const { pool } = makePool(t, be.port);
    const second = new Exchange(GET('/second'));
    // Reuse as soon as the connection is back in the pool, before the FIN is read: the race a
    // forwarder meets when a backend's keep-alive timeout fires just as a request is sent.
    const first = new Exchange(GET('/first'), { onEnd: () => queueMicrotask(() => pool.acquire(second)) });
    await exchange(pool, first);
    t.equal(first.body, 'first');
    t.equal(await second.done, 'error');
    t.equal(second.conn, first.conn, 'the second exchange ran on the reused socket');
    t.equal(second.conn!.uses, 1);
    t.strictSame(second.events, ['connection', 'error reset']);
    t.equal(second.error!.beforeResponse, true, 'retry-safe: no response byte arrived');
    t.equal(second.error!.status, 502);
  });

  t.test('reset (RST) when the next request arrives', async (t) => {
    const be = await scripted(t, (peer, i) => {
      if (i === 0) return OK('first');
      peer.socket.resetAndDestroy();
      return null;
    });
    const { pool } = makePool(t, be.port);
    const first = new Exchange(GET('/first'));
    await exchange(pool, first);
    const second = new Exchange(GET('/second'));
    t.equal(await exchange(pool, second), 'error');
    t.equal(second.conn, first.conn);
    t.strictSame(second.events, ['connection', 'error reset']);
    t.equal(second.error!.beforeResponse, true);
    // The retry a forwarder makes: a fresh socket.
    const retry = new Exchange(GET('/second'));
    pool.fresh(retry);
    t.not(retry.conn, first.conn);
    await retry.done;
    t.strictSame(retry.events, ['connection', 'start 200', 'end']);
    t.equal(be.peers.length, 2);
  });

  t.test('closed long before reuse: the pool drops it and opens a new one', async (t) => {
    const be = await scripted(t, (peer, _i, req) => {
      if (!req.startsWith('GET /first ')) return OK('second');
      peer.socket.end(OK('first'));
      return null;
    });
    const { pool, table } = makePool(t, be.port);
    const first = new Exchange(GET('/first'));
    await exchange(pool, first);
    await until(() => pool.idle === 0 && pool.size === 0, 'the closed connection to leave the pool');
    t.equal(table.get(C.OPEN_CONNS, SLOT), 0);
    const second = new Exchange(GET('/second'));
    await exchange(pool, second);
    t.not(second.conn, first.conn);
    t.equal(second.body, 'second');
  });

  t.test('reset mid-response is not retry-safe', async (t) => {
    const be = await scripted(t, (peer) => {
      peer.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', () => peer.socket.destroy());
      return null;
    });
    const { pool } = makePool(t, be.port);
    const ex = new Exchange(GET());
    await exchange(pool, ex);
    t.strictSame(ex.events, ['connection', 'start 200', 'error reset']);
    t.equal(ex.body, 'abc');
    t.equal(ex.error!.beforeResponse, false);
  });
});

t.test('an idle connection that receives bytes is dropped', async (t) => {
  const be = await scripted(t, () => OK('one'));
  const { pool } = makePool(t, be.port);
  const first = new Exchange(GET());
  await exchange(pool, first);
  t.equal(pool.idle, 1);
  be.peers[0]!.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
  await until(() => pool.size === 0, 'the connection to be dropped');
  const second = new Exchange(GET());
  await exchange(pool, second);
  t.not(second.conn, first.conn);
  t.equal(be.peers.length, 2);
});

t.test('request bodies as the backend sees them', async (t) => {
  /** A backend that answers once `complete(data)` holds for the bytes after the head. */
  const bodyBackend = (complete: (body: string) => boolean): Promise<Backend> =>
    backend(t, (peer) => {
      const at = peer.data.indexOf('\r\n\r\n');
      if (at >= 0 && complete(peer.data.slice(at + 4))) peer.socket.write(OK('thanks'));
    });

  t.test('Content-Length', async (t) => {
    const head = 'POST /upload HTTP/1.1\r\nHost: b\r\nContent-Length: 11\r\n\r\n';
    const be = await bodyBackend((body) => body.length >= 11);
    const { pool } = makePool(t, be.port);
    const ex = new Exchange(head, { body: [Buffer.from('hello'), Buffer.from(' '), Buffer.from('world')] });
    await exchange(pool, ex);
    t.strictSame(ex.events, ['connection', 'start 200', 'end']);
    t.equal(be.peers[0]!.data, `${head}hello world`);
    t.equal(pool.idle, 1, 'reusable: request and response both complete');
  });

  t.test('chunked, with an empty piece that must not end the body early', async (t) => {
    const head = 'POST /stream HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n';
    const big = 'x'.repeat(300);
    const expected = `${head}5\r\nhello\r\n6\r\n world\r\n12c\r\n${big}\r\n0\r\n\r\n`;
    const be = await bodyBackend((body) => body.length >= expected.length - head.length && body.endsWith('0\r\n\r\n'));
    const { pool } = makePool(t, be.port);
    const ex = new Exchange(head, {
      body: [Buffer.from('hello'), Buffer.alloc(0), Buffer.from(' world'), Buffer.from(big)],
      chunked: true,
    });
    await exchange(pool, ex);
    t.strictSame(ex.events, ['connection', 'start 200', 'end']);
    t.equal(be.peers[0]!.data, expected);
    t.equal(pool.idle, 1);
  });

  t.test('a body larger than the socket buffer reports drain', async (t) => {
    const size = 1024 * 1024;
    const head = `PUT /big HTTP/1.1\r\nHost: b\r\nContent-Length: ${size}\r\n\r\n`;
    const be = await bodyBackend((body) => body.length >= size);
    const { pool } = makePool(t, be.port);
    const ex = new Exchange(head, { body: [Buffer.alloc(size, 0x61)] });
    await exchange(pool, ex);
    t.strictSame(ex.writes, [false], 'writeBody asked the caller to wait');
    t.ok(ex.events.includes('drain'), 'onRequestDrain followed');
    t.equal(be.peers[0]!.data.length, head.length + size);
  });

  t.test('a response before the request body is complete: not reused', async (t) => {
    const be = await backend(t, (peer) => {
      if (peer.data.includes('\r\n\r\n') && !peer.data.includes('early')) {
        peer.socket.write('HTTP/1.1 413 Content Too Large\r\nContent-Length: 5\r\n\r\nearly');
        peer.data += 'early'; // answer once
      }
    });
    const { pool } = makePool(t, be.port);
    const ex = new Exchange('POST / HTTP/1.1\r\nHost: b\r\nContent-Length: 100\r\n\r\n', {
      body: [Buffer.from('part')],
      holdBody: true,
    });
    await exchange(pool, ex);
    t.strictSame(ex.events, ['connection', 'start 413', 'end']);
    ex.conn!.endBody(false); // what a forwarder may still do; must be harmless
    await until(() => pool.size === 0, 'the half-sent connection to be dropped');
    t.equal(pool.idle, 0);
  });
});

t.test('response backpressure: a false from onResponseData pauses the socket until resume()', async (t) => {
  const size = 4 * 1024 * 1024;
  const be = await scripted(t, () => `HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n${'z'.repeat(size)}`);
  const { pool } = makePool(t, be.port);
  let paused = true;
  let callsWhilePaused = 0;
  const ex = new Exchange(GET(), {
    onData: () => {
      if (paused) callsWhilePaused++;
      return !paused;
    },
  });
  pool.acquire(ex);
  await until(() => callsWhilePaused > 0, 'the first body piece');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(callsWhilePaused, 1, 'nothing more delivered while paused');
  t.ok(ex.body.length < size, 'the body is not all in yet');
  paused = false;
  ex.conn!.resume();
  t.equal(await ex.done, 'end');
  t.equal(ex.body.length, size);
});

t.test('pool limit: at most max connections, waiters served FIFO', async (t) => {
  let inFlight = 0;
  let maxInFlight = 0;
  const be = await scripted(t, (peer, _i, req) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    // Answer on a later turn so several requests are outstanding at once.
    setImmediate(() => {
      inFlight--;
      peer.socket.write(OK(req.split(' ')[1]!));
    });
    return null;
  });
  const { pool } = makePool(t, be.port, { max: 2, maxWaiting: 10 });
  const order: number[] = [];
  const exchanges = Array.from({ length: 7 }, (_, i) => {
    const ex = new Exchange(GET(`/${i}`));
    const onConnection = ex.onConnection.bind(ex);
    ex.onConnection = (conn) => {
      order.push(i);
      onConnection(conn);
    };
    return ex;
  });
  for (const ex of exchanges) pool.acquire(ex);
  t.equal(pool.size, 2, 'only max connections opened');
  t.strictSame(order, [0, 1], 'the rest wait');
  const outcomes = await Promise.all(exchanges.map((ex) => ex.done));
  t.strictSame(outcomes, Array(7).fill('end'));
  t.strictSame(order, [0, 1, 2, 3, 4, 5, 6], 'waiters got connections in arrival order');
  t.strictSame(exchanges.map((ex) => ex.body), exchanges.map((_, i) => `/${i}`));
  t.equal(be.peers.length, 2, 'the backend saw two connections');
  t.ok(maxInFlight <= 2, 'never more than two requests outstanding at the backend');
  t.equal(pool.size, 2);
  t.equal(pool.idle, 2);
});

t.test('wait queue full: onPoolFull at once; cancelled waiters are skipped', async (t) => {
  const be = await backend(t);
  const received = (path: string): boolean => be.peers[0]?.data.includes(GET(path)) ?? false;
  const { pool } = makePool(t, be.port, { max: 1, maxWaiting: 2 });
  const [a, b, c, d] = [0, 1, 2, 3].map((i) => new Exchange(GET(`/${i}`)));
  pool.acquire(a!);
  pool.acquire(b!);
  pool.acquire(c!);
  t.strictSame([b!.events, c!.events, d!.events], [[], [], []], 'b and c wait');
  pool.acquire(d!);
  t.strictSame(d!.events, ['pool-full'], 'refused synchronously');
  t.equal(await d!.done, 'pool-full');
  t.equal(pool.size, 1);

  b!.cancelled = true; // its client went away while queued
  await until(() => received('/0'), 'the first request');
  be.peers[0]!.socket.write(OK('a'));
  await a!.done;
  t.strictSame(b!.events, [], 'the cancelled waiter never got a connection');
  t.equal(c!.conn, a!.conn, 'the next live waiter got the released connection');
  await until(() => received('/2'), 'the third request');
  be.peers[0]!.socket.write(OK('c'));
  await c!.done;
  t.equal(c!.body, 'c');
  t.notOk(received('/1'), 'the cancelled request was never sent');

  // With the queue drained, new exchanges are accepted again.
  const e = new Exchange(GET('/4'));
  pool.acquire(e);
  t.strictSame(e.events, ['connection']);
  await until(() => received('/4'), 'the last request');
  be.peers[0]!.socket.write(OK('e'));
  await e.done;
  t.equal(e.body, 'e');
  t.equal(be.peers.length, 1);
});

t.test('a waiter is served on a new connection when the released one cannot be reused', async (t) => {
  const be = await scripted(t, (_peer, _i, req) => (req.startsWith('GET /first ') ? OK('1', 'Connection: close\r\n') : OK('2')));
  const { pool } = makePool(t, be.port, { max: 1, maxWaiting: 1 });
  const first = new Exchange(GET('/first'));
  const second = new Exchange(GET('/second'));
  pool.acquire(first);
  pool.acquire(second);
  t.strictSame(second.events, [], 'queued behind the first');
  await first.done;
  t.equal(await second.done, 'end');
  t.not(second.conn, first.conn);
  t.equal(second.body, '2');
  t.equal(be.peers.length, 2);
  t.ok(pool.size <= 1, 'never more than max');
});

t.test('waiters are served after connection failures too', async (t) => {
  const port = await deadPort();
  const { pool } = makePool(t, port, { max: 1, maxWaiting: 3 });
  const exchanges = [0, 1, 2].map(() => new Exchange(GET()));
  for (const ex of exchanges) pool.acquire(ex);
  const outcomes = await Promise.all(exchanges.map((ex) => ex.done));
  t.strictSame(outcomes, ['error', 'error', 'error']);
  t.strictSame(exchanges.map((ex) => ex.error!.kind), ['connect', 'connect', 'connect']);
});

t.test('OPEN_CONNS counts open sockets and returns to 0 after close', async (t) => {
  const be = await backend(t);
  const { pool, table } = makePool(t, be.port, { max: 3 });
  const open = (): number => table.get(C.OPEN_CONNS, SLOT);
  t.equal(open(), 0);
  const exchanges = [0, 1, 2].map((i) => new Exchange(GET(`/${i}`)));
  for (const ex of exchanges) pool.acquire(ex);
  t.equal(open(), 0, 'not counted while connecting');
  await until(() => be.peers.length === 3 && be.peers.every((p) => p.data.endsWith('\r\n\r\n')), 'three requests');
  t.equal(open(), 3);
  t.equal(table.get(C.OPEN_CONNS, SLOT + 1), 0, 'only this backend’s slot');
  for (const peer of be.peers) peer.socket.write(OK('k'));
  await Promise.all(exchanges.map((ex) => ex.done));
  t.equal(open(), 3, 'idle keep-alive sockets are still open');
  be.peers[0]!.socket.destroy();
  await until(() => open() === 2, 'one closed by the backend');
  t.equal(pool.size, 2);
  pool.close();
  await until(() => open() === 0, 'all closed');
  t.equal(pool.size, 0);
  t.ok(be.peers.every((p) => p.closed), 'the backend saw every socket close');
});

t.test('idle timeout: idle connections are closed at their deadline, never handed out after', async (t) => {
  const be = await scripted(t, (_peer, _i, req) => OK(req.split(' ')[1]!));
  const { pool, table } = makePool(t, be.port, { idleTimeoutMs: 3000 });
  const first = new Exchange(GET('/1'));
  await exchange(pool, first);
  t.equal(pool.idle, 1);
  pool.sweep(table.now() + 2000);
  t.notOk(first.conn!.destroyed, 'kept before the idle deadline');
  pool.sweep(table.now() + 3000);
  t.ok(first.conn!.destroyed, 'closed at the idle deadline');
  // Same turn: the socket has not emitted 'close' yet, so the pool still lists it.
  const second = new Exchange(GET('/2'));
  pool.acquire(second);
  t.not(second.conn, first.conn, 'the expired connection is not reused');
  t.equal(await second.done, 'end');
  t.strictSame(second.events, ['connection', 'start 200', 'end']);
  t.equal(second.body, '/2');
  await until(() => be.peers[0]!.closed, 'the backend to see the idle socket close');
  t.equal(table.get(C.OPEN_CONNS, SLOT), 1, 'only the new connection is open');

  // A busy connection runs on the request deadline, not the idle one.
  const silent = await backend(t);
  const { pool: busyPool, table: busyTable } = makePool(t, silent.port, { idleTimeoutMs: 10, requestTimeoutMs: 4000 });
  const busy = new Exchange(GET('/slow'));
  busyPool.acquire(busy);
  await until(() => silent.peers[0]?.data === GET('/slow'), 'the request');
  busyPool.sweep(busyTable.now() + 1000);
  t.equal(busy.error, null, 'not closed by the idle timeout while busy');
  silent.peers[0]!.socket.write(OK('x'));
  t.equal(await busy.done, 'end');
});

t.test('a closed pool lets busy exchanges finish, then closes their sockets', async (t) => {
  const be = await backend(t);
  const waiter = new Exchange(GET('/w'));
  const { pool, table } = makePool(t, be.port, { max: 1, maxWaiting: 1 });
  const busy = new Exchange(GET('/busy'));
  pool.acquire(busy);
  pool.acquire(waiter);
  await until(() => be.peers[0]?.data === GET('/busy'), 'the request');
  pool.close();
  t.strictSame(waiter.events, ['pool-full'], 'queued exchanges are refused');
  be.peers[0]!.socket.write(OK('done'));
  t.equal(await busy.done, 'end');
  t.equal(busy.body, 'done');
  await until(() => be.peers[0]!.closed, 'the socket to close');
  await until(() => table.get(C.OPEN_CONNS, SLOT) === 0, 'the count to drop');
});

t.test('destroyAll (a crashing worker) closes busy connections too, without a word to their exchanges', async (t) => {
  const be = await scripted(t, (_peer, _i, req) => (req.startsWith('GET /quick') ? OK('q') : null));
  const { pool, table } = makePool(t, be.port);
  const busy = new Exchange(GET('/busy'));
  pool.acquire(busy);
  await until(() => be.peers[0]?.data === GET('/busy'), 'the busy request');
  await exchange(pool, new Exchange(GET('/quick')));
  t.equal(pool.size, 2);
  t.equal(pool.idle, 1, 'one idle, one busy');
  pool.destroyAll();
  await until(() => be.peers.every((p) => p.closed), 'the backend to see both sockets close');
  await until(() => pool.size === 0, 'the pool to forget them');
  t.equal(table.get(C.OPEN_CONNS, SLOT), 0);
  t.strictSame(busy.events, ['connection'], 'the exchange is not called back: its worker is going away');
});

t.test('deadlines hold across 2^31 and 2^32 ms of table time', async (t) => {
  for (const boundary of [2 ** 31, 2 ** 32]) {
    let unix = 1_700_000_000_000;
    const table = new SharedTable(undefined, -1, () => unix);
    unix += boundary - 100;
    const be = await scripted(t, (_peer, _i, req) => (req.startsWith('GET /quick') ? OK('q') : null));
    const { pool } = makePool(t, be.port, { requestTimeoutMs: 1000, idleTimeoutMs: 1000 }, table);

    // The request deadline: set 100 ms before the boundary, due 900 ms after it.
    const silent = new Exchange(GET('/silent'));
    pool.acquire(silent);
    await until(() => be.peers[0]?.data === GET('/silent'), 'the request');
    pool.sweep(boundary + 899);
    t.equal(silent.error, null, `${boundary}: not before the request deadline`);
    pool.sweep(boundary + 900);
    t.equal(await silent.done, 'error');
    t.equal(silent.error!.kind, 'timeout', `${boundary}: a timeout at the request deadline`);

    // The idle deadline, the same way.
    const quick = new Exchange(GET('/quick'));
    await exchange(pool, quick);
    pool.sweep(boundary + 899);
    t.notOk(quick.conn!.destroyed, `${boundary}: idle connection kept before its deadline`);
    pool.sweep(boundary + 900);
    t.ok(quick.conn!.destroyed, `${boundary}: closed at its idle deadline`);
  }
});

t.test('a response that ends while paused for its client leaves a usable connection', async (t) => {
  // The last body bytes arrive in the same read as a pause request (the client is behind): the
  // exchange completes with the socket paused. The next exchange on that socket must still read.
  const be = await scripted(t, (_peer, i) => OK(i === 0 ? 'first body' : 'second'));
  const { pool } = makePool(t, be.port);
  const first = new Exchange(GET('/first'), { onData: () => false });
  t.equal(await exchange(pool, first), 'end');
  t.equal(Buffer.concat(first.chunks).toString(), 'first body');
  const second = new Exchange(GET('/second'));
  // A socket left paused would never deliver this response: the test would hang and time out.
  t.equal(await exchange(pool, second), 'end');
  t.equal(second.conn, first.conn, 'the same, reused socket');
  t.equal(Buffer.concat(second.chunks).toString(), 'second');
});

t.test('response bytes a cork never parsed end the exchange instead of looping or being dropped', async (t) => {
  const be = await scripted(t, () => OK('hello'));
  const { pool } = makePool(t, be.port);
  const ex = new Exchange(GET('/lost'));
  // A cork that never runs its function: the connection must fail the exchange, not spin on the read.
  ex.cork = () => {
    ex.corks++;
  };
  t.equal(await exchange(pool, ex), 'error');
  t.equal(ex.error?.kind, 'protocol');
  t.equal(ex.corks, 1, 'one attempt');
  t.ok(ex.conn!.destroyed, 'the connection is not reused');
});

// ---------------------------------------------------------------------------------------------
// Pipelining and its head-of-line guard (pipeline-guard.ts)

/**
 * One kept-alive connection that has carried a response, then `paths` acquired in one turn with
 * depth 4: the first opens a batch on that connection and the rest join it. Returns the exchanges
 * and the peer they were written to, once the backend has all of them.
 */
async function pipelinedBatch(t: Test, be: Backend, pool: Pool, paths: string[]): Promise<{ exs: Exchange[]; peer: Peer }> {
  const warm = new Exchange(GET('/warm'));
  t.equal(await exchange(pool, warm), 'end');
  const exs = paths.map((p) => new Exchange(GET(p), { depth: 4 }));
  for (const ex of exs) {
    ex.requeued = () => pool.acquire(ex);
    pool.acquire(ex);
  }
  const peer = be.peers[0]!;
  const want = GET('/warm') + paths.map((p) => GET(p)).join('');
  // The whole batch went to the one warm connection.
  await until(() => peer.data === want, 'the batch on the warm connection');
  return { exs, peer };
}

/** A backend answering each path with itself, except that the first request for `path` destroys its connection. */
async function dropsOnce(t: Test, path: string): Promise<Backend> {
  let dropped = false;
  return scripted(t, (peer, _i, req) => {
    const target = req.split(' ')[1]!;
    if (target === path && !dropped) {
      dropped = true;
      peer.socket.destroy();
      return null;
    }
    return OK(target);
  });
}

t.test('pipelining: a response kept waiting past the bound sends the queued requests again elsewhere', async (t) => {
  // /hold is answered only when the test says so, and so is everything behind it on its
  // connection (responses go in order); anything else at once.
  const held: Peer[] = [];
  const be = await scripted(t, (peer, _i, req) => {
    const path = req.split(' ')[1]!;
    if (held.includes(peer)) return null;
    if (path.startsWith('/hold')) {
      held.push(peer);
      return null;
    }
    return OK(`${path}@${be.peers.indexOf(peer)}`);
  });
  const { pool } = makePool(t, be.port, { pipelineHolMs: 30 });
  const { exs, peer } = await pipelinedBatch(t, be, pool, ['/hold', '/b', '/c']);
  const [a, b, c] = exs as [Exchange, Exchange, Exchange];
  t.equal(await b.done, 'end');
  t.equal(await c.done, 'end');
  t.strictSame(b.events, ['connection', 'requeue', 'connection', 'start 200', 'end'], 'queued behind /hold, sent again');
  t.not(b.body.split('@')[1], '0', `answered on another connection (${b.body})`);
  t.not(c.body.split('@')[1], '0', `answered on another connection (${c.body})`);
  t.equal(a.events.length, 1, 'the held request is still waiting for its own answer');
  t.ok(pool.pipelinePaused, 'pipelining to this backend is paused after the incident');

  // The held answer arrives. Nobody waits for the answers behind it on that connection any more:
  // it is closed (the backend sees the abort) instead of being read on.
  held.length = 0;
  peer.socket.write(OK('held'), 'latin1');
  t.equal(await a.done, 'end');
  t.equal(a.body, 'held');
  await until(() => peer.closed, 'the pipelined connection closed after the held answer');
  t.match(b.body, /^\/b@/, 'the requeued exchanges kept their own answers');

  // Paused: a new batch does not form, each request has its own connection.
  const d = new Exchange(GET('/d'), { depth: 4 });
  const e = new Exchange(GET('/e'), { depth: 4 });
  pool.acquire(d);
  pool.acquire(e);
  await Promise.all([d.done, e.done]);
  t.not(d.conn, e.conn, 'no pipelining while paused');
});

t.test('pipelining: a backend that drops the connection mid-batch gets the queued requests again, and a pause', async (t) => {
  // Answers the batch's first request, then is gone at /drop: it may not handle pipelining.
  const be = await dropsOnce(t, '/drop');
  const { pool } = makePool(t, be.port, { pipelineHolMs: 5000 });
  const { exs } = await pipelinedBatch(t, be, pool, ['/first', '/drop', '/y', '/z']);
  const [first, x, y, z] = exs as [Exchange, Exchange, Exchange, Exchange];
  t.equal(await first.done, 'end');
  t.equal(first.body, '/first');
  t.equal(await x.done, 'error', 'the request being answered fails as a reset (the proxy may retry it)');
  t.equal(x.error?.kind, 'reset');
  t.equal(await y.done, 'end');
  t.equal(await z.done, 'end');
  t.equal(y.body, '/y');
  t.equal(z.body, '/z');
  t.ok(y.events.includes('requeue') && z.events.includes('requeue'), 'the queued ones were sent again');
  t.ok(pool.pipelinePaused, 'dropping a pipelined connection mid-batch pauses pipelining');
});

t.test('pipelining: a kept-alive connection the backend closes as the batch arrives is no mark against it', async (t) => {
  const be = await dropsOnce(t, '/stale');
  const { pool } = makePool(t, be.port, { pipelineHolMs: 5000 });
  const { exs } = await pipelinedBatch(t, be, pool, ['/stale', '/p', '/q']);
  const [stale, p, q] = exs as [Exchange, Exchange, Exchange];
  t.equal(await stale.done, 'error');
  t.equal(await p.done, 'end');
  t.equal(await q.done, 'end');
  t.strictSame([p.body, q.body], ['/p', '/q']);
  t.notOk(pool.pipelinePaused, 'the keep-alive race (nothing of the batch answered) does not pause pipelining');
});

t.test('pipelining: a Connection: close answer sends the queued requests again, without a pause', async (t) => {
  const be = await scripted(t, (peer, _i, req) => {
    const path = req.split(' ')[1]!;
    if (path === '/last') {
      peer.socket.end(OK('last', 'Connection: close\r\n'), 'latin1');
      return null;
    }
    return OK(path);
  });
  const { pool } = makePool(t, be.port, { pipelineHolMs: 5000 });
  const { exs } = await pipelinedBatch(t, be, pool, ['/last', '/q', '/r']);
  const [l, q, r] = exs as [Exchange, Exchange, Exchange];
  t.equal(await l.done, 'end');
  t.equal(l.body, 'last');
  t.equal(await q.done, 'end');
  t.equal(await r.done, 'end');
  t.strictSame([q.body, r.body], ['/q', '/r']);
  t.ok(q.events.includes('requeue'), 'sent again after the close');
  t.notOk(pool.pipelinePaused, 'a backend that says it closes is not at fault (a cap on requests per connection)');
});

t.test('pipelining: responses that come in time need no guard', async (t) => {
  const be = await scripted(t, (_peer, _i, req) => OK(req.split(' ')[1]!));
  const { pool } = makePool(t, be.port, { pipelineHolMs: 5000 });
  const { exs } = await pipelinedBatch(t, be, pool, ['/1', '/2', '/3', '/4']);
  for (const ex of exs) t.equal(await ex.done, 'end');
  t.strictSame(
    exs.map((ex) => ex.body),
    ['/1', '/2', '/3', '/4'],
  );
  t.ok(exs.every((ex) => !ex.events.includes('requeue')), 'nothing was sent twice');
  t.equal(be.peers.length, 1, 'one connection carried them all');
  t.notOk(pool.pipelinePaused);
});

t.test('pipelining: a guard timer that fires late (this loop stalled) reads what arrived before it judges', async (t) => {
  // The backend (in this process) answers the whole batch, then stalls this thread's loop well past
  // the bound: the answers sit unread in the proxy's socket when the guard's timer comes due.
  const be = await scripted(t, (peer, _i, req) => {
    const path = req.split(' ')[1]!;
    peer.socket.write(OK(path), 'latin1');
    if (path === '/s3') {
      const until = performance.now() + 60;
      while (performance.now() < until);
    }
    return null;
  });
  const { pool } = makePool(t, be.port, { pipelineHolMs: 10 });
  const { exs } = await pipelinedBatch(t, be, pool, ['/s1', '/s2', '/s3']);
  for (const ex of exs) t.equal(await ex.done, 'end');
  t.strictSame(
    exs.map((ex) => ex.body),
    ['/s1', '/s2', '/s3'],
  );
  t.ok(exs.every((ex) => !ex.events.includes('requeue')), 'nothing was sent again: the stall was ours, not the backend’s');
  t.notOk(pool.pipelinePaused);
});
