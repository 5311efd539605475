// TLS passthrough by SNI and UDP through the real sluice process (config file form): real TLS
// clients (tls.connect with and without servername) reach the pool their name routes to, and the
// encrypted stream is relayed untouched; DNS-style UDP exchanges stick to one backend per client
// address and answer from the listening port; a config reload of the SNI table applies to new
// connections.

import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import t from 'tap';
import { ensureBuilt, freePort, startSluice } from '../helpers/sluice.js';
import { until as waitUntil } from '../helpers/wait.js';
import { adminGet, sample } from './fixtures/cli.js';
import type { Teardown } from './fixtures/net.js';
import { makeCert } from './fixtures/cert.js';

await ensureBuilt();

/** A TLS server that answers with its name and the SNI it saw, after echoing one line. */
async function tlsBackend(t: Teardown, name: string, creds: { key: Buffer; cert: Buffer }): Promise<number> {
  const srv = tls.createServer(creds, (s) => {
    s.on('error', () => {});
    s.once('data', (d: Buffer) => s.end(`${name}|${(s as tls.TLSSocket & { servername?: string | false }).servername || '-'}|${d.toString()}`));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  return (srv.address() as net.AddressInfo).port;
}

function ask(port: number, servername: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const opts: tls.ConnectionOptions = { host: '127.0.0.1', port, rejectUnauthorized: false };
    if (servername !== undefined) opts.servername = servername;
    const c = tls.connect(opts, () => c.write('hi'));
    let text = '';
    c.setEncoding('utf8').on('data', (d: string) => (text += d));
    c.on('end', () => {
      resolve(text);
      c.destroy();
    });
    c.on('error', reject);
  });
}

t.test('TLS passthrough: SNI exact, wildcard and default routing with real TLS clients', async (t) => {
  const creds = makeCert(t);
  const [api, web, other] = await Promise.all([tlsBackend(t, 'api', creds), tlsBackend(t, 'web', creds), tlsBackend(t, 'other', creds)]);
  const [port, admin] = await Promise.all([freePort(), freePort()]);
  const config = (defaultPool: string) => `
pools:
  api:   { upstreams: ["tcp://127.0.0.1:${api}"] }
  web:   { upstreams: ["tcp://127.0.0.1:${web}"] }
  other: { upstreams: ["tcp://127.0.0.1:${other}"] }
listeners:
  - tls_passthrough: "127.0.0.1:${port}"
    sni: { api.example.com: api, "*.example.com": web }
    default: ${defaultPool}
`;
  const sluice = await startSluice(t, { upstreams: [], config: config('other'), env: { SLUICE_ADMIN_LISTEN: `127.0.0.1:${admin}` } });
  t.equal(await ask(port, 'api.example.com'), 'api|api.example.com|hi', 'exact name');
  t.equal(await ask(port, 'API.Example.COM'), 'api|API.Example.COM|hi', 'names route without case; the hello reaches the backend as sent');
  t.equal(await ask(port, 'shop.eu.example.com'), 'web|shop.eu.example.com|hi', 'wildcard, several labels deep');
  t.equal(await ask(port, 'example.com'), 'other|example.com|hi', 'the bare domain is not under *.example.com: default');
  t.equal(await ask(port, undefined), 'other|-|hi', 'no SNI: default');

  // A plain-text client is not TLS: closed without reaching a backend.
  const s = net.connect({ host: '127.0.0.1', port });
  s.on('error', () => {});
  let got = 0;
  s.on('data', (d: Buffer) => (got += d.length));
  await new Promise<void>((r) => s.once('close', () => r()).write('GET / HTTP/1.1\r\n\r\n'));
  t.equal(got, 0, 'a non-TLS client is closed with no bytes');

  const name = `tls 127.0.0.1:${port}`;
  let metrics = '';
  await waitUntil('metrics count the rejection', async () => {
    metrics = (await adminGet(admin, '/metrics')).body;
    return sample(metrics, `sluice_l4_rejected_total{listener="${name}",kind="tls-passthrough"}`) === 1;
  });
  t.equal(sample(metrics, `sluice_l4_pool_connections_opened_total{listener="${name}",pool="api"}`), 2);
  t.equal(sample(metrics, `sluice_l4_pool_connections_opened_total{listener="${name}",pool="web"}`), 1);
  t.equal(sample(metrics, `sluice_l4_pool_connections_opened_total{listener="${name}",pool="other"}`), 2);

  sluice.writeConfig(config('web'));
  t.equal((await sluice.reload()).msg, 'configuration reloaded');
  t.equal(await ask(port, undefined), 'web|-|hi', 'after SIGHUP, the new default pool');
});

/** A DNS query for svc.example IN A with transaction id `id` (RFC 1035 §4.1). */
function query(id: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2);
  header.writeUInt16BE(1, 4);
  return Buffer.concat([header, Buffer.from([3]), Buffer.from('svc'), Buffer.from([7]), Buffer.from('example'), Buffer.from([0, 0, 1, 0, 1])]);
}

/** Answers every query with A 10.0.0.<n>. */
async function dnsBackend(t: Teardown, n: number): Promise<number> {
  const s = dgram.createSocket('udp4');
  s.on('message', (q, rinfo) => {
    const r = Buffer.concat([q, Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, n])]);
    r.writeUInt16BE(0x8180, 2);
    r.writeUInt16BE(1, 6);
    s.send(r, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => s.close(() => r())));
  return s.address().port;
}

async function udpClient(t: Teardown, port: number) {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  t.teardown(() => socket.close());
  const waiting = new Map<number, (v: { backend: number; fromPort: number }) => void>();
  socket.on('message', (m, rinfo) => {
    const id = m.readUInt16BE(0);
    waiting.get(id)?.({ backend: m[m.length - 1]!, fromPort: rinfo.port });
    waiting.delete(id);
  });
  return (id: number) =>
    new Promise<{ backend: number; fromPort: number }>((resolve) => {
      waiting.set(id, resolve);
      socket.send(query(id), port, '127.0.0.1');
    });
}

t.test('UDP: DNS-style exchanges, one backend per client address, replies from the listening port', async (t) => {
  const [d1, d2] = await Promise.all([dnsBackend(t, 1), dnsBackend(t, 2)]);
  const [port, admin] = await Promise.all([freePort(), freePort()]);
  await startSluice(t, {
    upstreams: [],
    config: `
pools:
  dns: { upstreams: ["udp://127.0.0.1:${d1}", "udp://127.0.0.1:${d2}"] }
listeners:
  - { udp: "127.0.0.1:${port}", pool: dns, idle_timeout_ms: 30000 }
`,
    env: { SLUICE_ADMIN_LISTEN: `127.0.0.1:${admin}`, SLUICE_HEALTH_CHECK: 'on' },
  });
  const clients = await Promise.all([0, 1, 2, 3].map(() => udpClient(t, port)));
  const seen = new Set<number>();
  for (const [i, ask] of clients.entries()) {
    const first = await ask(100 + i);
    t.equal(first.fromPort, port, 'the reply comes from the listening port');
    t.ok(first.backend === 1 || first.backend === 2);
    for (let k = 1; k <= 3; k++) t.equal((await ask(100 + i + k * 10)).backend, first.backend, 'the same backend for the session');
    seen.add(first.backend);
  }
  t.same([...seen].sort(), [1, 2], 'sessions spread over both backends');
  // The UDP pool has no TCP health check to fail (health checks are on in this test).
  const status = JSON.parse((await adminGet(admin, '/api/status')).body) as { l4: { kind: string; stats: { active: number; opened: number } }[] };
  t.match(status.l4[0], { kind: 'udp', stats: { active: 4, opened: 4 } });
});
