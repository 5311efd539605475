// The relay's read path (relay-reads.ts, read-buffers.ts, relay.ts): a shared buffer copied out
// of, and owned buffers reused read after read. Bytes must be intact when writes
// to the client go asynchronous (an owned buffer is still referenced), when buffers pass from one
// connection to the next, and with many connections at once; a greeting the backend sends first
// must arrive.

import { createHash } from 'node:crypto';
import t from 'tap';
import { ReadBuffers } from '../../src/l4/read-buffers.js';
import { RelayReads } from '../../src/l4/relay-reads.js';
import { TcpProxy, type TcpProxyOptions } from '../../src/l4/tcp-proxy.js';
import { blocks, connect, makePool, newTable, openConns, readAll, server, until, writeBlocks, type Teardown } from './fixtures/net.js';

async function proxy(t: Teardown, options: Omit<TcpProxyOptions, 'host' | 'port'>): Promise<{ p: TcpProxy; port: number }> {
  const p = new TcpProxy({ host: '127.0.0.1', port: 0, ...options });
  const { port } = await p.start();
  t.teardown(() => p.drain(0));
  return { p, port };
}

function digest(total: number, seed: number): string {
  const h = createHash('sha256');
  for (const b of blocks(total, seed)) h.update(b);
  return h.digest('hex');
}

/** A backend that sends `total` bytes of seed (the first 4 bytes the client sends, as a number) then ends. */
function source(t: Teardown, total: number) {
  return server(t, (s) => {
    s.once('data', (d: Buffer) => void writeBlocks(s, total, d.readUInt32BE(0)));
  });
}

function ask(seed: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(seed);
  return b;
}

t.test('ReadBuffers: a shared buffer, owned buffers lent and taken back, a bounded free list', async (t) => {
  const buffers = new ReadBuffers(4096, 2);
  t.equal(buffers.shared.length, 4096, 'the shared buffer is no larger than an owned one');
  t.equal(new ReadBuffers().shared.length, 65_536);
  const a = buffers.take();
  const b = buffers.take();
  const c = buffers.take();
  t.equal(a.length, 4096);
  t.not(a.buffer, b.buffer, 'each buffer has memory of its own');
  t.not(a.buffer, buffers.shared.buffer);
  buffers.give(a);
  buffers.give(b);
  buffers.give(c);
  t.equal(buffers.free, 2, 'no more than `keep` are kept');
  t.ok(buffers.take() === b, 'a given-back buffer is lent again');
  buffers.give(Buffer.alloc(100));
  buffers.give(buffers.shared);
  t.equal(buffers.free, 1, 'neither a buffer of another size nor the shared one is kept');
  t.throws(() => new ReadBuffers(10), RangeError);
});

t.test('RelayReads: copies out of the shared buffer, owns a buffer while streaming, gives it back when quiet', async (t) => {
  const buffers = new ReadBuffers(32_768, 4);
  const reads = new RelayReads(buffers);
  // As libuv drives it: a read lands in the buffer the handle has, and the callback's return value,
  // when there is one, is the buffer for the next read.
  let handleBuffer = buffers.shared;
  const got: Buffer[] = [];
  const read = (n: number, fill: number, queued = false) => {
    handleBuffer.fill(fill, 0, n);
    got.push(reads.landed(n));
    const next = reads.next(queued);
    if (next !== undefined) handleBuffer = next;
  };
  read(10, 1);
  t.not(got[0]!.buffer, buffers.shared.buffer, 'what lands in the shared buffer leaves as a copy');
  t.same(got[0], Buffer.alloc(10, 1));
  t.notOk(reads.streaming);
  t.ok(handleBuffer === buffers.shared, 'a quiet side keeps reading into the shared buffer');
  read(buffers.shared.length, 2); // fills it: streaming from now on
  t.ok(reads.streaming);
  t.same(got[1], Buffer.alloc(buffers.shared.length, 2));
  const own = handleBuffer;
  t.not(own.buffer, buffers.shared.buffer, 'the next read goes to a buffer of its own');
  read(20_000, 3);
  t.ok(got[2]!.buffer === own.buffer, 'a read into the owned buffer goes on as a view, no copy');
  t.equal(got[2]!.length, 20_000);
  read(100, 4, true); // small, but its write is queued and points into the buffer: keep it
  t.ok(reads.streaming, 'not given back while a write from it is queued');
  t.ok(handleBuffer === own);
  t.equal(buffers.free, 0);
  read(100, 5);
  t.notOk(reads.streaming, 'a small read with nothing queued: back to the shared buffer');
  t.equal(buffers.free, 1);
  t.ok(handleBuffer === buffers.shared);
  read(buffers.shared.length, 6);
  t.ok(reads.streaming);
  reads.release();
  t.notOk(reads.streaming);
  t.equal(buffers.free, 1, 'released after close: the buffer it took went back');
});

t.test('a client that reads in stalls: writes go async while the buffer is reused, bytes intact', async (t) => {
  const table = newTable();
  const total = 16 << 20;
  const be = await source(t, total);
  // A small buffer: thousands of reads, so many of them meet a full client queue.
  const { p, port } = await proxy(t, { table, pool: makePool(table, 'stall', [be.port]), readBufferBytes: 4096 });
  const c = await connect(port);
  c.pause();
  c.write(ask(11));
  const h = createHash('sha256');
  let n = 0;
  let stalls = 0;
  c.on('data', (d: Buffer) => {
    h.update(d);
    n += d.length;
  });
  const ended = new Promise((r) => c.once('end', r));
  // Stall until the proxy has stopped reading the backend (its write to us is queued and still
  // points into the buffer), then read a while; a few times over.
  for (let i = 0; i < 5 && n < total; i++) {
    c.pause();
    // (Or until the backend has sent everything: the kernel's buffers can hold the last stretch.)
    await until(() => p.stats.bytesOut >= total || [...p.relays()][0]?.backendPaused === true);
    if (p.stats.bytesOut < total) stalls++;
    c.resume();
    const upTo = n + (1 << 20);
    await until(() => n >= upTo || n >= total);
  }
  c.resume();
  c.end();
  await ended;
  t.ok(stalls >= 1, `the proxy stopped reading while a write was queued (${stalls} times)`);
  t.equal(n, total);
  t.equal(h.digest('hex'), digest(total, 11), 'the same bytes, in order');
  await until(() => p.stats.active === 0);
});

t.test('buffers passed from connection to connection, and eight at once, keep every stream intact', async (t) => {
  const table = newTable();
  const total = 4 << 20;
  const be = await source(t, total);
  const pool = makePool(table, 'many', [be.port]);
  const { p, port } = await proxy(t, { table, pool, readBufferBytes: 8192 });
  const one = async (seed: number) => {
    const c = await connect(port);
    const got = readAll(c);
    c.end(ask(seed));
    return createHash('sha256').update(await got).digest('hex');
  };
  // One after another: each connection takes the buffer the previous one gave back.
  for (let seed = 1; seed <= 3; seed++) {
    t.equal(await one(seed), digest(total, seed), `sequential ${seed}`);
    await until(() => p.stats.active === 0);
  }
  const seeds = [21, 22, 23, 24, 25, 26, 27, 28];
  const got = await Promise.all(seeds.map(one));
  t.same(got, seeds.map((s) => digest(total, s)), 'eight concurrent downloads, each its own bytes');
  await until(() => p.stats.active === 0);
  t.same(openConns(table, pool), [0]);
});

t.test('a backend that speaks first: its greeting arrives before the client has sent a byte', async (t) => {
  const table = newTable();
  const be = await server(t, (s) => {
    s.write('220 hello\r\n');
    s.on('data', (d: Buffer) => s.end(`250 ${d.toString()}`));
  });
  const { port } = await proxy(t, { table, pool: makePool(table, 'greet', [be.port]) });
  const c = await connect(port);
  const first = await new Promise<Buffer>((r) => c.once('data', r));
  t.equal(first.toString(), '220 hello\r\n');
  const rest = readAll(c);
  c.write('ok');
  t.equal((await rest).toString(), '250 ok');
});


t.test('copyOut: every size takes the same path, copies stay intact after the shared buffer is reused', async (t) => {
  const b = new ReadBuffers(4096 * 48); // shared buffer 64 KiB
  const kept: Array<[Buffer, number]> = [];
  // Small reads (carved from one slab), reads past the slab's end (a new slab), and reads larger
  // than a slab (a slab of their own), in turn.
  for (const [i, n] of [4, 4, 100, 16_000, 900, 16_384, 65_536, 3, 40_000, 1].entries()) {
    b.shared.fill(i + 1, 0, n);
    const copy = b.copyOut(n);
    t.equal(copy.length, n);
    t.ok(Buffer.isBuffer(copy));
    t.not(copy.buffer, b.shared.buffer, 'never a view of the shared buffer');
    t.equal(copy.byteOffset % 8, 0, '8-byte aligned');
    kept.push([copy, i + 1]);
  }
  b.shared.fill(0);
  for (const [copy, v] of kept) t.ok(copy.every((x) => x === v), `the copy of ${copy.length} bytes kept its bytes`);
});
