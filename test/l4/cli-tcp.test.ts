// L4 TCP through the real sluice process: env form (SLUICE_TCP_LISTEN, tcp:// upstreams) with a
// sha256-checked transfer each way and the per-listener metrics; file form with PROXY v1/v2 to
// backends and a listener accepting PROXY from a front balancer; SIGHUP swapping the pool for new
// connections only; SIGTERM drain with open connections.

import t from 'tap';
import { encodeV2 } from '../../src/l4/proxy-protocol.js';
import { ensureBuilt, freePort, runCli, startSluice } from '../helpers/sluice.js';
import { until as waitUntil } from '../helpers/wait.js';
import { adminGet, exchange, namedEcho, refused, sample, sha256 } from './fixtures/cli.js';
import { blocks, connect, echo, readAll, refusedPort, server } from './fixtures/net.js';

await ensureBuilt();

t.test('env form: SLUICE_TCP_LISTEN relays both ways intact, least-conn by default, metrics per listener and pool', async (t) => {
  const a = await echo(t);
  const b = await echo(t);
  const l4 = await freePort();
  const admin = await freePort();
  const sluice = await startSluice(t, {
    upstreams: [`tcp://127.0.0.1:${a.port}`, `tcp://127.0.0.1:${b.port}`],
    env: { SLUICE_TCP_LISTEN: `127.0.0.1:${l4}`, SLUICE_ADMIN_LISTEN: `127.0.0.1:${admin}` },
  });
  const poolLine = sluice.logs().find((l) => l.msg === 'pool');
  t.equal(poolLine?.balancer, 'least-conn', 'an L4-only pool balances by least connections');
  const ready = sluice.logs().find((l) => l.msg === 'sluice is listening');
  t.same(ready?.l4, [`tcp 127.0.0.1:${l4}`]);

  // 16 MiB each way: the client writes while reading the echo back (both directions at once).
  const size = 16 << 20;
  const s = await connect(l4);
  const sent = sha256();
  for (const blk of blocks(size, 7)) sent.update(blk);
  const got = sha256();
  let received = 0;
  s.on('data', (d: Buffer) => {
    got.update(d);
    received += d.length;
  });
  const ended = new Promise<void>((r) => s.once('end', r));
  for (const blk of blocks(size, 7)) if (!s.write(blk)) await new Promise((r) => s.once('drain', r));
  s.end();
  await ended;
  t.equal(received, size, 'every byte came back');
  t.equal(got.hex(), sent.hex(), 'sha256 of what came back is sha256 of what was sent');

  // Two held connections spread over the two backends (least-conn), seen by the backends themselves.
  const c1 = await connect(l4);
  const c2 = await connect(l4);
  await exchange(c1, 'x');
  await exchange(c2, 'y');
  await waitUntil('both backends hold one', () => a.sockets.size === 1 && b.sockets.size === 1);
  t.pass('one connection on each backend');

  const name = `tcp 127.0.0.1:${l4}`;
  let metrics = '';
  await waitUntil('metrics show the transfer', async () => {
    metrics = (await adminGet(admin, '/metrics')).body;
    return sample(metrics, `sluice_l4_connections_active{listener="${name}",kind="tcp"}`) === 2;
  });
  t.equal(sample(metrics, `sluice_l4_connections_opened_total{listener="${name}",kind="tcp"}`), 3);
  t.equal(sample(metrics, `sluice_l4_bytes_in_total{listener="${name}",kind="tcp"}`), size + 2);
  t.equal(sample(metrics, `sluice_l4_bytes_out_total{listener="${name}",kind="tcp"}`), size + 2);
  t.equal(sample(metrics, `sluice_l4_connect_failures_total{listener="${name}",kind="tcp"}`), 0);
  t.equal(sample(metrics, `sluice_l4_pool_connections_opened_total{listener="${name}",pool="default"}`), 3);
  t.equal(sample(metrics, `sluice_l4_pool_connections_active{listener="${name}",pool="default"}`), 2);
  t.equal(sample(metrics, `sluice_l4_pool_bytes_in_total{listener="${name}",pool="default"}`), size + 2, 'pool bytes count open relays too');
  t.equal(sample(metrics, 'sluice_backend_open_connections{backend="127.0.0.1:' + a.port + '",pool="default"}'), 1, 'OPEN_CONNS in the shared table');

  const status = JSON.parse((await adminGet(admin, '/api/status')).body) as { l4: { name: string; kind: string; running: boolean; stats: { active: number } }[] };
  t.equal(status.l4.length, 1);
  t.match(status.l4[0], { name, kind: 'tcp', running: true, stats: { active: 2 } });
  const page = (await adminGet(admin, '/')).body;
  t.match(page, /L4 listeners/, 'the status page has the L4 table');
  c1.destroy();
  c2.destroy();
});

t.test('file form: PROXY v2 and v1 to backends byte for byte, and a listener accepting PROXY from a front balancer', async (t) => {
  const captured: Buffer[][] = [[], [], []];
  const backends = await Promise.all(
    [0, 1, 2].map((i) =>
      server(t, (s) => {
        const chunks: Buffer[] = [];
        s.on('data', (d: Buffer) => chunks.push(d));
        s.on('end', () => {
          captured[i]!.push(Buffer.concat(chunks));
          s.end('ok');
        });
      }),
    ),
  );
  const [p2, p1, front] = await Promise.all([freePort(), freePort(), freePort()]);
  await startSluice(t, {
    upstreams: [],
    config: `
pools:
  pg:   { upstreams: ["tcp://127.0.0.1:${backends[0]!.port}"], proxy_protocol: v2 }
  old:  { upstreams: ["http://127.0.0.1:${backends[1]!.port}"], proxy_protocol: v1 }
  edge: { upstreams: ["tcp://127.0.0.1:${backends[2]!.port}"], proxy_protocol: v1 }
listeners:
  - { tcp: "127.0.0.1:${p2}", pool: pg }
  - { tcp: "127.0.0.1:${p1}", pool: old }
  - { tcp: "127.0.0.1:${front}", pool: edge, accept_proxy_protocol: true }
`,
  });
  const send = async (port: number, bytes: Buffer): Promise<{ local: number; answer: string }> => {
    const s = await connect(port);
    const local = s.localPort!;
    const answer = readAll(s);
    s.end(bytes);
    return { local, answer: (await answer).toString() };
  };

  const v2 = await send(p2, Buffer.from('SELECT 1'));
  t.equal(v2.answer, 'ok');
  const header = encodeV2({ family: 'tcp4', sourceAddress: '127.0.0.1', sourcePort: v2.local, destinationAddress: '127.0.0.1', destinationPort: p2 });
  const seen = captured[0]![0]!;
  t.same(seen.subarray(0, 12), Buffer.from('0d0a0d0a000d0a515549540a', 'hex'), 'the v2 signature');
  t.same(seen.subarray(0, header.length), header, 'the whole v2 header: PROXY, TCP4, the client address and the listener address');
  t.equal(seen.subarray(header.length).toString(), 'SELECT 1', 'then the client bytes, untouched');

  const v1 = await send(p1, Buffer.from('hello'));
  t.equal(v1.answer, 'ok');
  t.equal(captured[1]![0]!.toString(), `PROXY TCP4 127.0.0.1 127.0.0.1 ${v1.local} ${p1}\r\nhello`, 'an http:// upstream is taken for its host and port; v1 text header');

  const fromFront = encodeV2({ family: 'tcp4', sourceAddress: '192.0.2.7', sourcePort: 40000, destinationAddress: '198.51.100.1', destinationPort: 443 });
  const relayed = await send(front, Buffer.concat([fromFront, Buffer.from('data')]));
  t.equal(relayed.answer, 'ok');
  t.equal(captured[2]![0]!.toString(), 'PROXY TCP4 192.0.2.7 198.51.100.1 40000 443\r\ndata', 'the front balancer\'s client goes on to the backend');

  // The same header on a listener that does not accept PROXY is data.
  const asData = await send(p1, fromFront);
  t.equal(asData.answer, 'ok');
  t.same(captured[1]![1]!.subarray(-fromFront.length), fromFront, 'relayed as bytes');
  // A connection without a header on the accepting listener is closed, the backend never sees it.
  const bare = await connect(front);
  const closed = readAll(bare);
  bare.end('no header');
  t.equal((await closed).length, 0, 'closed without an answer');
  t.equal(captured[2]!.length, 1, 'no backend connection for it');
});

t.test('SLUICE_TCP_ACCEPT_PROXY_PROTOCOL=1: env-form listeners take the client from a front balancer\'s PROXY header, and need one', async (t) => {
  const captured: Buffer[] = [];
  const backend = await server(t, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => {
      captured.push(Buffer.concat(chunks));
      s.end('ok');
    });
  });
  const front = await freePort();
  await startSluice(t, {
    upstreams: [],
    config: `pools:\n  edge: { upstreams: ["tcp://127.0.0.1:${backend.port}"], proxy_protocol: v1 }\n`,
    env: { SLUICE_TCP_LISTEN: `127.0.0.1:${front}=>edge`, SLUICE_TCP_ACCEPT_PROXY_PROTOCOL: '1' },
  });
  const header = encodeV2({ family: 'tcp4', sourceAddress: '192.0.2.9', sourcePort: 41000, destinationAddress: '198.51.100.2', destinationPort: 5432 });
  const s = await connect(front);
  const answer = readAll(s);
  s.end(Buffer.concat([header, Buffer.from('data')]));
  t.equal((await answer).toString(), 'ok');
  t.equal(captured[0]!.toString(), 'PROXY TCP4 192.0.2.9 198.51.100.2 41000 5432\r\ndata', "the front's client goes on to the backend; the header itself does not");
  const bare = await connect(front);
  const closed = readAll(bare);
  bare.end('no header');
  t.equal((await closed).length, 0, 'a connection without a header is closed without an answer');
  t.equal(captured.length, 1, 'and reaches no backend');
});

t.test('SIGHUP: new connections use the new pool, open ones keep their backend', async (t) => {
  const a = await namedEcho(t, 'a');
  const b = await namedEcho(t, 'b');
  const [l4, added] = await Promise.all([freePort(), freePort()]);
  const file = (port: number, extra = '') => `
pools:
  svc: { upstreams: ["tcp://127.0.0.1:${port}"] }
listeners:
  - { tcp: "127.0.0.1:${l4}", pool: svc }
${extra}`;
  const sluice = await startSluice(t, { upstreams: [], config: file(a.port) });
  const before = await connect(l4);
  t.equal(await exchange(before, '1'), 'a:1');
  sluice.writeConfig(file(b.port, `  - { tcp: "127.0.0.1:${added}", pool: svc }\n`));
  const outcome = await sluice.reload();
  t.equal(outcome.msg, 'configuration reloaded');
  t.match(outcome.changed, ['pools.svc', 'listeners']);
  const after = await connect(l4);
  t.equal(await exchange(after, '2'), 'b:2', 'a new connection goes to the new pool');
  t.equal(await exchange(before, '3'), 'a:3', 'the open one still talks to its backend');
  await waitUntil('the added listener accepts', async () => !(await refused(added)));
  const third = await connect(added);
  t.equal(await exchange(third, '4'), 'b:4', 'a listener the reload added serves');

  // Removed again: it stops accepting; the first listener keeps serving.
  sluice.writeConfig(file(b.port));
  t.equal((await sluice.reload()).msg, 'configuration reloaded');
  await waitUntil('the removed listener stops accepting', () => refused(added));
  t.equal(await exchange(after, '5'), 'b:5');
  for (const s of [before, after, third]) s.destroy();
});

t.test('SIGTERM drains: no new connections, open ones run until they end, then the process exits 0', async (t) => {
  const backend = await echo(t);
  const l4 = await freePort();
  const sluice = await startSluice(t, { upstreams: [`tcp://127.0.0.1:${backend.port}`], env: { SLUICE_TCP_LISTEN: `127.0.0.1:${l4}`, SLUICE_DRAIN_TIMEOUT_MS: '60000' } });
  const open = await connect(l4);
  await exchange(open, 'before');
  const after = sluice.logs().length;
  const exit = sluice.stop(60_000);
  await sluice.waitForLog((l) => l.msg === 'draining', 5000, after);
  await waitUntil('the L4 listener stops accepting', () => refused(l4));
  t.equal(await exchange(open, 'during'), 'during', 'the open connection still relays');
  let exited = false;
  void exit.then(() => (exited = true));
  t.notOk(exited, 'the process waits for it');
  const rest = readAll(open);
  open.end();
  await rest;
  t.equal(await exit, 0, 'exit 0 once it ended');
});

t.test('drain timeout: a connection still open is closed, and the process exits', async (t) => {
  const backend = await echo(t);
  const l4 = await freePort();
  const sluice = await startSluice(t, { upstreams: [`tcp://127.0.0.1:${backend.port}`], env: { SLUICE_TCP_LISTEN: `127.0.0.1:${l4}`, SLUICE_DRAIN_TIMEOUT_MS: '300' } });
  const open = await connect(l4);
  await exchange(open, 'x');
  open.on('error', () => {});
  const closed = readAll(open); // its end (or a reset)
  const code = await sluice.stop(30_000);
  await closed;
  t.equal(code, 0);
  t.pass('the held connection was ended at the drain timeout');
});

t.test('a TCP listener on the HTTP listener\'s port is refused at start, naming the variable', async (t) => {
  const backend = await echo(t);
  const port = await freePort();
  const r = runCli({ SLUICE_LISTEN: `127.0.0.1:${port}`, SLUICE_UPSTREAMS: `tcp://127.0.0.1:${backend.port}`, SLUICE_TCP_LISTEN: `127.0.0.1:${port}`, SLUICE_ADMIN_LISTEN: 'off' });
  t.equal(r.code, 1);
  t.match(r.stdout + r.stderr, /SLUICE_TCP_LISTEN.*already SLUICE_LISTEN's/);
});

t.test('SLUICE_LISTEN=off: an L4-only Sluice opens no HTTP port and starts no HTTP worker; relays, reports, reloads and stops', async (t) => {
  const a = await namedEcho(t, 'a');
  const b = await namedEcho(t, 'b');
  const [l4, admin] = await Promise.all([freePort(), freePort()]);
  const file = (port: number) => `
pools:
  svc: { upstreams: ["tcp://127.0.0.1:${port}"] }
listeners:
  - { tcp: "127.0.0.1:${l4}", pool: svc }
`;
  const sluice = await startSluice(t, { upstreams: [], config: file(a.port), env: { SLUICE_LISTEN: 'off', SLUICE_ADMIN_LISTEN: `127.0.0.1:${admin}` } });
  t.match(sluice.logs().find((l) => l.msg === 'sluice is listening'), { listen: 'off', workers: 0, l4: [`tcp 127.0.0.1:${l4}`] });
  t.ok(await refused(sluice.port), 'the port the helper set aside for HTTP is not listened on');
  const s = await connect(l4);
  t.equal(await exchange(s, '1'), 'a:1');
  s.destroy();
  const metrics = (await adminGet(admin, '/metrics')).body;
  t.equal(sample(metrics, `sluice_l4_connections_opened_total{listener="tcp 127.0.0.1:${l4}",kind="tcp"}`), 1);
  t.equal((await adminGet(admin, '/api/status')).status, 200, '/api/status answers with no HTTP worker');
  sluice.writeConfig(file(b.port));
  t.equal((await sluice.reload()).msg, 'configuration reloaded');
  const again = await connect(l4);
  t.equal(await exchange(again, '2'), 'b:2', 'the reload reached the L4 thread');
  again.destroy();
  t.equal(await sluice.stop(10_000), 0, 'stops cleanly');
});

t.test('SLUICE_LISTEN=off with nothing else to serve is refused at start', async (t) => {
  const r = runCli({ SLUICE_LISTEN: 'off', SLUICE_UPSTREAMS: 'http://127.0.0.1:9', SLUICE_ADMIN_LISTEN: 'off' });
  t.equal(r.code, 1);
  t.match(r.stdout + r.stderr, /SLUICE_LISTEN="off": expected a listener left to serve/);
});

t.test('health checks apply to L4 pools: a backend whose TCP check fails gets no connections', async (t) => {
  const live = await echo(t);
  const dead = await refusedPort();
  const [l4, admin] = await Promise.all([freePort(), freePort()]);
  const sluice = await startSluice(t, {
    upstreams: [`tcp://127.0.0.1:${dead}`, `tcp://127.0.0.1:${live.port}`],
    env: { SLUICE_TCP_LISTEN: `127.0.0.1:${l4}`, SLUICE_ADMIN_LISTEN: `127.0.0.1:${admin}`, SLUICE_HEALTH_CHECK: 'on', SLUICE_HEALTH_INTERVAL_MS: '500' },
  });
  t.match(sluice.logs().find((l) => l.msg === 'pool'), { health: 'tcp' }, 'an L4 pool is checked by TCP connect');
  for (let i = 0; i < 6; i++) {
    const s = await connect(l4);
    t.equal(await exchange(s, `n${i}`), `n${i}`);
    s.destroy();
  }
  const metrics = (await adminGet(admin, '/metrics')).body;
  t.equal(sample(metrics, `sluice_l4_connect_failures_total{listener="tcp 127.0.0.1:${l4}",kind="tcp"}`), 0, 'the down backend was never tried');
  t.equal(sample(metrics, `sluice_backend_healthy{backend="127.0.0.1:${dead}",pool="default"}`), 0);
});

t.test('SLUICE_L4_THREADS=2 spreads listeners over two threads, both serving', async (t) => {
  const a = await namedEcho(t, 'a');
  const b = await namedEcho(t, 'b');
  const [p1, p2, admin] = await Promise.all([freePort(), freePort(), freePort()]);
  await startSluice(t, {
    upstreams: [],
    config: `
pools:
  a: { upstreams: ["tcp://127.0.0.1:${a.port}"] }
  b: { upstreams: ["tcp://127.0.0.1:${b.port}"] }
listeners:
  - { tcp: "127.0.0.1:${p1}", pool: a }
  - { tcp: "127.0.0.1:${p2}", pool: b }
`,
    env: { SLUICE_L4_THREADS: '2', SLUICE_ADMIN_LISTEN: `127.0.0.1:${admin}` },
  });
  const s1 = await connect(p1);
  const s2 = await connect(p2);
  t.equal(await exchange(s1, '1'), 'a:1');
  t.equal(await exchange(s2, '2'), 'b:2');
  const status = JSON.parse((await adminGet(admin, '/api/status')).body) as { l4: { name: string; thread: number; running: boolean }[] };
  t.same(
    status.l4.map((l) => [l.name, l.thread, l.running]),
    [
      [`tcp 127.0.0.1:${p1}`, 0, true],
      [`tcp 127.0.0.1:${p2}`, 1, true],
    ],
  );
  s1.destroy();
  s2.destroy();
});
