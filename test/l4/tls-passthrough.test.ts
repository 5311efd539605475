import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import t from 'tap';
import { SniTable } from '../../src/l4/pool.js';
import { encodeV1 } from '../../src/l4/proxy-protocol.js';
import { TcpProxy } from '../../src/l4/tcp-proxy.js';
import { captureHello } from './fixtures/hello.js';
import { connect, makePool, newTable, openConns, readAll, server, until, type Teardown } from './fixtures/net.js';
import { makeCert } from './fixtures/cert.js';

/** A TLS backend that answers every connection with its own name and the SNI it saw. */
async function tlsBackend(t: Teardown, name: string, creds: { key: Buffer; cert: Buffer }): Promise<number> {
  const srv = tls.createServer(creds, (s) => {
    s.on('error', () => {});
    s.end(`${name}:${(s as tls.TLSSocket & { servername?: string | false }).servername || '-'}`);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  return (srv.address() as net.AddressInfo).port;
}

/** What a real TLS client reads through the proxy (socket: a custom transport, e.g. a byte splitter). */
function ask(port: number, servername: string | undefined, socket?: Duplex): Promise<string> {
  return new Promise((resolve, reject) => {
    const opts: tls.ConnectionOptions = socket ? { socket, rejectUnauthorized: false } : { host: '127.0.0.1', port, rejectUnauthorized: false };
    if (servername !== undefined) opts.servername = servername;
    const c = tls.connect(opts);
    const chunks: Buffer[] = [];
    c.on('data', (d: Buffer) => chunks.push(d));
    c.on('end', () => {
      resolve(Buffer.concat(chunks).toString());
      c.destroy();
    });
    c.on('error', reject);
  });
}

/** A transport that writes to a TCP socket one byte per write, each on its own event-loop turn. */
function byteSplitter(sock: net.Socket): Duplex {
  const d = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      void (async () => {
        for (const b of chunk) {
          sock.write(Buffer.from([b]));
          await new Promise((r) => setImmediate(r));
        }
        cb();
      })();
    },
    read() {},
    final(cb) {
      sock.end();
      cb();
    },
  });
  sock.on('data', (b) => d.push(b));
  sock.on('end', () => d.push(null));
  return d;
}

t.test('SniTable: exact beats wildcard, longest suffix wins, default otherwise', async (t) => {
  const table = newTable();
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => makePool(table, n, [1]));
  const sni = new SniTable({ 'API.example.com': a!, '*.example.com': b!, '*.eu.example.com': c! }, d!);
  t.equal(sni.match('api.example.com'), a, 'exact, case-insensitive');
  t.equal(sni.match('www.example.com'), b);
  t.equal(sni.match('x.y.example.com'), b, 'several labels deep');
  t.equal(sni.match('x.eu.example.com'), c, 'longest suffix');
  t.equal(sni.match('example.com'), d, 'a wildcard does not match the bare domain');
  t.equal(sni.match(''), d, 'no SNI');
  t.equal(new SniTable({ 'a.test': a! }).match('b.test'), null, 'no default');
  t.throws(() => new SniTable({ 'a.*.test': a! }));
  t.same(new Set(sni.pools()), new Set([a, b, c, d]), 'pools(): every pool a name can choose');
  t.equal(new SniTable({ 'x.test': a!, 'y.test': a!, '*.z.test': a! }, a!).pools().length, 1, 'each once');
});

t.test('pool counters exist for every SNI pool before any connection, and for new ones on setRoutes', async (t) => {
  const table = newTable();
  const [a, b, d, e] = ['sa', 'sb', 'sd', 'se'].map((n) => makePool(table, n, [1]));
  const p = new TcpProxy({ host: '127.0.0.1', port: 0, table, sni: new SniTable({ 'a.test': a!, '*.b.test': b! }, d!) });
  t.same([...p.poolStats.keys()].sort(), ['sa', 'sb', 'sd']);
  t.match(p.poolStats.get('sb'), { opened: 0, active: 0, connectFailures: 0, bytesIn: 0, bytesOut: 0 });
  p.setRoutes({ sni: new SniTable({ 'e.test': e! }) });
  t.same([...p.poolStats.keys()].sort(), ['sa', 'sb', 'sd', 'se'], 'a pool the reload drops keeps its counters');
});

t.test('TLS passthrough routes real TLS clients by SNI and relays the stream untouched', async (t) => {
  const creds = makeCert(t);
  const table = newTable();
  const api = makePool(table, 'api', [await tlsBackend(t, 'api', creds)]);
  const web = makePool(table, 'web', [await tlsBackend(t, 'web', creds)]);
  const dflt = makePool(table, 'default', [await tlsBackend(t, 'default', creds)]);
  const p = new TcpProxy({ host: '127.0.0.1', port: 0, table, sni: new SniTable({ 'api.example.com': api, '*.example.com': web }, dflt) });
  const { port } = await p.start();
  t.teardown(() => p.drain(0));

  t.equal(await ask(port, 'api.example.com'), 'api:api.example.com', 'exact name');
  t.equal(await ask(port, 'www.example.com'), 'web:www.example.com', 'wildcard');
  t.match(await ask(port, 'WWW.Example.COM'), /^web:/, 'names match case-insensitively');
  t.equal(await ask(port, 'other.test'), 'default:other.test', 'no match: default pool');
  t.equal(await ask(port, undefined), 'default:-', 'no SNI at all (an IP host): default pool');

  const sock = await connect(port);
  sock.setNoDelay(true);
  t.equal(await ask(port, 'api.example.com', byteSplitter(sock)), 'api:api.example.com', 'a ClientHello written one byte at a time');
  sock.destroy();

  await until(() => p.stats.active === 0);
  t.same([api, web, dflt].flatMap((pool) => openConns(table, pool)), [0, 0, 0]);
  t.equal(p.stats.rejected, 0);
  t.match(Object.fromEntries(p.poolStats), { api: { opened: 2, active: 0 }, web: { opened: 2, active: 0 }, default: { opened: 2, active: 0 } }, 'per-pool stats');
  t.ok(p.poolStats.get('api')!.bytesIn > 0 && p.poolStats.get('api')!.bytesOut > 0);
});

t.test('the peeked ClientHello reaches the backend byte for byte', async (t) => {
  const table = newTable();
  const seen: Buffer[] = [];
  const be = await server(t, (s) => {
    s.on('data', (d) => seen.push(d));
    s.on('end', () => s.end());
  });
  const pool = makePool(table, 'raw', [be.port]);
  const p = new TcpProxy({ host: '127.0.0.1', port: 0, table, sni: new SniTable({ 'raw.example': pool }) });
  const { port } = await p.start();
  t.teardown(() => p.drain(0));
  const hello = await captureHello('raw.example');
  const c = await connect(port);
  c.setNoDelay(true);
  for (const b of hello) {
    c.write(Buffer.from([b]));
    await new Promise((r) => setImmediate(r));
  }
  c.end('after the hello');
  await readAll(c);
  t.same(Buffer.concat(seen), Buffer.concat([hello, Buffer.from('after the hello')]));
});

t.test('a PROXY header from a front balancer, then the ClientHello: routed, and only the hello is relayed', async (t) => {
  const table = newTable();
  const seen: Buffer[] = [];
  const be = await server(t, (s) => {
    s.on('data', (d) => seen.push(d));
    s.on('end', () => s.end());
  });
  const pool = makePool(table, 'behind-lb', [be.port]);
  const p = new TcpProxy({ host: '127.0.0.1', port: 0, table, acceptProxy: true, sni: new SniTable({ 'lb.example': pool }) });
  const { port } = await p.start();
  t.teardown(() => p.drain(0));
  const hello = await captureHello('lb.example');
  const header = encodeV1({ family: 'tcp4', sourceAddress: '203.0.113.9', sourcePort: 5555, destinationAddress: '198.51.100.1', destinationPort: 443 });
  const c = await connect(port);
  const both = Buffer.concat([header, hello]);
  c.write(both.subarray(0, header.length + 3)); // the header and the first bytes of the hello together
  c.write(both.subarray(header.length + 3));
  c.end();
  await readAll(c);
  t.same(Buffer.concat(seen), hello, 'the header was consumed; the hello went through untouched');
  t.equal(p.stats.opened, 1);
});

t.test('malformed or unroutable hellos get a clean close, never a crash', async (t) => {
  const table = newTable();
  const be = await server(t, (s) => s.end('should not be reached'));
  const pool = makePool(table, 'only', [be.port]);
  const reasons: string[] = [];
  const p = new TcpProxy({ host: '127.0.0.1', port: 0, table, sni: new SniTable({ 'only.example': pool }), prefaceTimeoutMs: 100, onReject: (r) => reasons.push(r) });
  const { port } = await p.start();
  t.teardown(() => p.drain(0));
  const hello = await captureHello('only.example');
  const bad = Buffer.from(hello);
  bad[5] = 2; // a ServerHello
  const cases: [string, Buffer][] = [
    ['plain HTTP', Buffer.from('GET / HTTP/1.1\r\nHost: only.example\r\n\r\n')],
    ['a handshake that is not a ClientHello', bad],
    ['a name with no route and no default', await captureHello('elsewhere.example')],
  ];
  for (const [name, bytes] of cases) {
    const c = await connect(port);
    const got = readAll(c);
    c.on('error', () => {});
    c.write(bytes);
    t.equal((await got).length, 0, name);
  }
  const silent = await connect(port);
  const got = readAll(silent);
  silent.write(hello.subarray(0, 20));
  t.equal((await got).length, 0, 'a truncated hello is closed at the preface timeout');
  const early = await connect(port);
  const got2 = readAll(early);
  early.end(hello.subarray(0, 20));
  t.equal((await got2).length, 0, 'a client that ends mid-hello is closed');
  await until(() => p.stats.active === 0);
  t.equal(p.stats.rejected, 5);
  t.match(reasons, [/record type 71/, /not a ClientHello/, /no route for server name "elsewhere.example"/, /preface timeout/, /ended during the preface/], 'each with its reason');
  t.equal(p.stats.opened, 0, 'no backend was ever connected');
  t.same(openConns(table, pool), [0]);
});
