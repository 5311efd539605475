import dgram from 'node:dgram';
import t from 'tap';
import { OutlierDetector } from '../../src/health/outlier.js';
import { UdpProxy } from '../../src/l4/udp-proxy.js';
import { createPolicy } from '../../src/balancer/registry.js';
import { L4Pool } from '../../src/l4/pool.js';
import { C } from '../../src/state/layout.js';
import { makePool, policyDefaults, newTable, openConns, until, type Teardown } from './fixtures/net.js';

/** A DNS query for `name` IN A with transaction id `id` (RFC 1035 §4.1). */
function query(id: number, name: string): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4); // QDCOUNT
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

/** A DNS server answering every A query with 10.0.0.<n>. */
async function dnsBackend(t: Teardown, n: number): Promise<{ port: number; queries: number }> {
  const s = dgram.createSocket('udp4');
  const state = { port: 0, queries: 0 };
  s.on('message', (q, rinfo) => {
    state.queries++;
    const answer = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, n]);
    const r = Buffer.concat([q, answer]);
    r.writeUInt16BE(0x8180, 2); // QR, RD, RA
    r.writeUInt16BE(1, 6); // ANCOUNT
    s.send(r, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  state.port = s.address().port;
  t.teardown(() => new Promise<void>((r) => s.close(() => r())));
  return state;
}

interface Client {
  ask(id: number): Promise<{ backend: number; fromPort: number; id: number }>;
  socket: dgram.Socket;
}

async function client(t: Teardown, proxyPort: number): Promise<Client> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  t.teardown(() => socket.close());
  const waiting = new Map<number, (v: { backend: number; fromPort: number; id: number }) => void>();
  socket.on('message', (m, rinfo) => {
    const id = m.readUInt16BE(0);
    waiting.get(id)?.({ backend: m[m.length - 1]!, fromPort: rinfo.port, id });
    waiting.delete(id);
  });
  return {
    socket,
    ask(id) {
      return new Promise((resolve) => {
        waiting.set(id, resolve);
        socket.send(query(id, 'svc.example'), proxyPort, '127.0.0.1');
      });
    },
  };
}

t.test('DNS-style exchange: sessions stick to one backend, replies come from the listener, idle sessions expire', async (t) => {
  const table = newTable();
  const backends = [await dnsBackend(t, 1), await dnsBackend(t, 2), await dnsBackend(t, 3)];
  const pool = makePool(table, 'dns', backends.map((b) => b.port));
  const p = new UdpProxy({ host: '127.0.0.1', port: 0, table, pool, sessionIdleMs: 150 });
  const { port } = await p.start();
  t.teardown(() => p.close());

  const clients = [await client(t, port), await client(t, port), await client(t, port)];
  const firstAnswers = [];
  for (const [i, c] of clients.entries()) firstAnswers.push(await c.ask(100 + i));
  t.ok(firstAnswers.every((a) => a.fromPort === port), 'every reply comes from the listening port');
  t.same(firstAnswers.map((a) => a.id), [100, 101, 102], 'each reply answers its own query');
  t.same(new Set(firstAnswers.map((a) => a.backend)).size, 3, 'least-conn spreads three sessions over three backends');
  t.same(openConns(table, pool), [1, 1, 1], 'one open session per backend');

  for (let round = 0; round < 5; round++) {
    for (const [i, c] of clients.entries()) {
      const a = await c.ask(1000 + round * 10 + i);
      if (a.backend !== firstAnswers[i]!.backend) t.fail(`client ${i} moved from backend ${firstAnswers[i]!.backend} to ${a.backend}`);
    }
  }
  t.pass('every later query of a client went to its first backend');
  t.equal(p.stats.sessionsOpened, 3);
  t.equal(p.stats.datagramsIn, 18);
  t.equal(p.stats.datagramsOut, 18);
  t.same(backends.map((b) => b.queries), [6, 6, 6]);

  await until(() => p.stats.sessionsExpired === 3);
  t.equal(p.sessions, 0);
  t.same(openConns(table, pool), [0, 0, 0], 'expiry released every session once');
  const again = await clients[0]!.ask(7);
  t.equal(again.id, 7, 'a client after expiry gets a new session');
  t.equal(p.stats.sessionsOpened, 4);
});

t.test('the session table is bounded', async (t) => {
  const table = newTable();
  const be = await dnsBackend(t, 9);
  const pool = makePool(table, 'bounded', [be.port]);
  const p = new UdpProxy({ host: '127.0.0.1', port: 0, table, pool, maxSessions: 2, sessionIdleMs: 0 });
  const { port } = await p.start();
  t.teardown(() => p.close());
  const a = await client(t, port);
  const b = await client(t, port);
  const c = await client(t, port);
  await a.ask(1);
  await b.ask(2);
  c.socket.send(query(3, 'svc.example'), port, '127.0.0.1');
  await until(() => p.stats.dropped === 1);
  t.equal(p.sessions, 2, 'the third client address was not given a session');
  await p.close();
  t.same(openConns(table, pool), [0], 'close releases every session');
});

t.test('a refusing backend ends its session and is ejected; the client retries onto a live one', async (t) => {
  const table = newTable();
  const dead = dgram.createSocket('udp4');
  await new Promise<void>((r) => dead.bind(0, '127.0.0.1', r));
  const deadPort = dead.address().port;
  await new Promise<void>((r) => dead.close(() => r()));
  const live = await dnsBackend(t, 4);
  const pool = makePool(table, 'failover', [deadPort, live.port]);
  const outliers = new OutlierDetector(table, { consecutive5xx: 5, consecutiveFailures: 1, baseEjectionMs: 60_000, maxEjectionMs: 300_000, maxEjectionPercent: 50 });
  outliers.setMembers(pool.backends.map((b) => b.slot));
  const p = new UdpProxy({ host: '127.0.0.1', port: 0, table, pool: new L4Pool({ name: 'dead', backends: [pool.backends[0]!], policy: createPolicy('least-conn', table, [pool.backends[0]!], policyDefaults) }), outliers });
  const { port } = await p.start();
  t.teardown(() => p.close());
  const c = await client(t, port);
  c.socket.send(query(1, 'svc.example'), port, '127.0.0.1');
  await until(() => p.stats.backendErrors === 1 && p.sessions === 0);
  const deadSlot = pool.backends[0]!.slot;
  t.equal(table.get(C.ERR_CONNECT, deadSlot), 1, 'the ICMP refusal counts as a connect failure');
  t.ok(outliers.ejected(deadSlot, table.now()), 'and ejects the backend');
  t.same(openConns(table, pool), [0, 0], 'the failed session was released');
  p.setPool(pool);
  const a = await c.ask(2);
  t.equal(a.backend, 4, "the client's retry opens a session on the live backend");
  t.equal(p.stats.sessionsOpened, 2);
  t.same(openConns(table, pool), [0, 1]);
});
