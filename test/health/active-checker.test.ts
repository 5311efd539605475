// Active health checks against real loopback servers: new backends wait for their first pass,
// thresholds in both directions, HTTP status rules, timeouts, ending outlier ejections, reload.

import t, { type Test } from 'tap';
import http from 'node:http';
import net from 'node:net';
import pino from 'pino';
import type { Upstream } from '../../src/config/types.js';
import { ActiveChecker, type BackendHealth, type HealthOptions } from '../../src/health/active-checker.js';
import { C, Health } from '../../src/state/layout.js';
import { Membership } from '../../src/state/membership.js';
import { SharedTable } from '../../src/state/table.js';
import { refusedPort } from '../helpers/backends.js';

const BASE: HealthOptions = {
  mode: 'tcp',
  path: '',
  expect: [{ from: 200, to: 299 }],
  intervalMs: 40,
  timeoutMs: 500,
  healthyThreshold: 2,
  unhealthyThreshold: 3,
  outlier: { consecutive5xx: 5, consecutiveFailures: 5, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectionPercent: 10 },
  trust: { upstreamCa: '', upstreamInsecure: false },
};

function upstreamAt(port: number): Upstream {
  return { url: `http://127.0.0.1:${port}`, protocol: 'http:', host: '127.0.0.1', port, weight: 1 };
}

interface LogLine {
  msg: string;
  [key: string]: unknown;
}

/** A checker over a fresh table with one backend per port; logs are captured. */
function setup(t: Test, ports: number[], overrides: Partial<HealthOptions> = {}) {
  const table = new SharedTable();
  const membership = new Membership(table);
  const backends = membership.assign(ports.map(upstreamAt));
  const logs: LogLine[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line) as LogLine) });
  const checker = new ActiveChecker(table, { ...BASE, ...overrides }, log);
  t.teardown(() => checker.stop());
  const health = (slot = 0): BackendHealth => checker.snapshot().find((h) => h.slot === slot)!;
  return { table, membership, backends, checker, logs, health };
}

/** A TCP server that counts connections and can be taken down and brought back on its port. */
async function tcpServer(t: Test) {
  const sockets = new Set<net.Socket>();
  const state = { connections: 0, at: [] as number[], server: null as net.Server | null, port: 0 };
  const up = async (): Promise<void> => {
    const server = net.createServer((s) => {
      state.connections++;
      state.at.push(performance.now());
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(state.port, '127.0.0.1', resolve));
    state.port = (server.address() as net.AddressInfo).port;
    state.server = server;
  };
  const down = async (): Promise<void> => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => (state.server ? state.server.close(() => resolve()) : resolve()));
    state.server = null;
  };
  await up();
  t.teardown(down);
  return Object.assign(state, { up, down });
}

/** An HTTP server answering by path; every request is recorded. */
async function httpServer(t: Test, handler: http.RequestListener) {
  const seen: http.IncomingMessage[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as net.AddressInfo).port, seen };
}

/** Poll `read` every 2 ms, recording each distinct value, until `done` or the timeout. */
async function watch<T>(read: () => T, done: (v: T) => boolean, timeoutMs = 3000): Promise<T[]> {
  const seen: T[] = [];
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = read();
    if (seen.length === 0 || JSON.stringify(seen.at(-1)) !== JSON.stringify(v)) seen.push(v);
    if (done(v)) return seen;
    if (Date.now() > end) throw new Error(`timed out; saw ${JSON.stringify(seen)}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('a new backend gets no traffic until its first check passes', async (t) => {
  const server = await tcpServer(t);
  const { table, backends, checker, logs, health } = setup(t, [server.port]);
  const weight = table.get(C.WEIGHT, 0);
  checker.track(backends);
  t.equal(table.get(C.HEALTH, 0), Health.UNHEALTHY, 'marked before any worker hears of it');
  t.equal(table.get(C.WEIGHT, 0), 0, 'and held at weight 0, so not even panic mode picks it');
  t.notOk(table.available(0, table.now()));
  t.equal(health().state, 'pending');
  t.equal(await checker.settled([0], 2000), true);
  t.equal(health().state, 'healthy');
  t.equal(table.get(C.HEALTH, 0), Health.HEALTHY);
  t.equal(table.get(C.WEIGHT, 0), weight, 'its weight is back');
  t.ok(table.available(0, table.now()));
  t.ok(table.get(C.SLOW_START_AT, 0) > 0, 'slow start begins');
  t.match(health().lastCheck, { ok: true, detail: 'connected' });
  t.ok(logs.some((l) => l.msg === 'new backend passed its first health check'));
});

t.test('checks off: new backends are available at once and never probed', async (t) => {
  const server = await tcpServer(t);
  const { table, backends, checker, health } = setup(t, [server.port], { mode: 'off' });
  checker.track(backends);
  t.equal(checker.enabled, false);
  t.equal(table.get(C.HEALTH, 0), Health.UNKNOWN);
  t.ok(table.available(0, table.now()));
  t.equal(await checker.settled([0], 10), true, 'nothing to wait for');
  await sleep(150);
  t.equal(server.connections, 0);
  t.equal(health().state, 'unchecked');
});

t.test('down after unhealthyThreshold failures, back after healthyThreshold passes', async (t) => {
  const server = await tcpServer(t);
  const { table, backends, checker, logs, health } = setup(t, [server.port]);
  checker.track(backends);
  await checker.settled([0], 2000);
  const firstSlowStart = table.get(C.SLOW_START_AT, 0);

  await server.down();
  const goingDown = await watch(
    () => ({ state: health().state, failures: health().failures, HEALTH: table.get(C.HEALTH, 0) }),
    (v) => v.state === 'unhealthy',
  );
  for (const v of goingDown) {
    if (v.failures < 3) t.same([v.state, v.HEALTH], ['healthy', Health.HEALTHY], `still in after ${v.failures} failures`);
  }
  t.same(goingDown.at(-1), { state: 'unhealthy', failures: 3, HEALTH: Health.UNHEALTHY }, 'out at the 3rd');
  t.ok(goingDown.some((v) => v.failures === 2), 'the 2nd failure was seen, and did not flip it');
  t.match(health().lastCheck, { ok: false, detail: 'connect ECONNREFUSED' });
  t.match(logs.find((l) => l.msg === 'backend is unhealthy'), { failures: 3, detail: 'connect ECONNREFUSED' });
  t.notOk(table.available(0, table.now()));

  await server.up();
  const comingBack = await watch(
    () => ({ state: health().state, successes: health().successes, HEALTH: table.get(C.HEALTH, 0) }),
    (v) => v.state === 'healthy',
  );
  for (const v of comingBack) {
    if (v.successes < 2) t.same([v.state, v.HEALTH], ['unhealthy', Health.UNHEALTHY], `still out after ${v.successes} passes`);
  }
  t.same(comingBack.at(-1), { state: 'healthy', successes: 2, HEALTH: Health.HEALTHY }, 'back at the 2nd pass');
  t.ok(comingBack.some((v) => v.successes === 1), 'the 1st pass was seen, and did not flip it');
  t.ok(table.get(C.SLOW_START_AT, 0) > firstSlowStart, 'slow start again on recovery');
  t.ok(logs.some((l) => l.msg === 'backend is healthy again'));
});

t.test('a new backend that never passes stays out and is reported once the threshold is reached', async (t) => {
  const port = await refusedPort();
  const { table, backends, checker, logs, health } = setup(t, [port]);
  checker.track(backends);
  t.equal(await checker.settled([0], 2000), true, 'settled by a failed first check too');
  t.equal(health().state, 'pending');
  t.equal(table.get(C.HEALTH, 0), Health.UNHEALTHY);
  t.ok(table.get(C.WEIGHT, 0) > 0, 'after a first result it is an ordinary unhealthy backend (panic may use it)');
  await watch(() => health().state, (s) => s === 'unhealthy');
  t.equal(table.get(C.HEALTH, 0), Health.UNHEALTHY);
  t.ok(logs.some((l) => l.msg === 'new backend is failing its health checks'));
});

t.test('HTTP checks: the path is requested and the status decides', async (t) => {
  const statuses: Record<string, number> = { '/ok': 200, '/empty': 204, '/moved': 301, '/broken': 503 };
  const server = await httpServer(t, (req, res) => {
    res.writeHead(statuses[req.url!] ?? 404);
    res.end('body that is never read');
  });
  const first = async (path: string, expect: HealthOptions['expect']): Promise<BackendHealth> => {
    const { backends, checker, health } = setup(t, [server.port], { mode: 'http', path, expect });
    checker.track(backends);
    await checker.settled([0], 2000);
    const h = health();
    checker.stop();
    return h;
  };
  const twoXx = [{ from: 200, to: 299 }];
  t.match(await first('/ok', twoXx), { state: 'healthy', lastCheck: { ok: true, detail: 'status 200' } });
  t.match(await first('/empty', twoXx), { state: 'healthy', lastCheck: { detail: 'status 204' } });
  t.match(await first('/broken', twoXx), { state: 'pending', lastCheck: { ok: false, detail: 'status 503' } });
  t.match(await first('/moved', twoXx), { state: 'pending', lastCheck: { ok: false, detail: 'status 301' } });
  t.match(await first('/nowhere', twoXx), { state: 'pending', lastCheck: { detail: 'status 404' } });
  const only200 = [{ from: 200, to: 200 }];
  t.match(await first('/empty', only200), { state: 'pending', lastCheck: { detail: 'status 204' } }, 'SLUICE_HEALTH_EXPECT=200');
  const withRedirect = [{ from: 200, to: 299 }, { from: 301, to: 301 }];
  t.match(await first('/moved', withRedirect), { state: 'healthy' }, 'SLUICE_HEALTH_EXPECT=2xx,301');

  const req = server.seen[0]!;
  t.equal(req.method, 'GET');
  t.equal(req.url, '/ok');
  t.equal(req.headers.host, `127.0.0.1:${server.port}`);
  t.equal(req.headers['user-agent'], 'sluice-health-check');
});

t.test('timeouts: a server that accepts but never answers fails the HTTP check at the timeout', async (t) => {
  const server = await httpServer(t, () => {
    // never answers
  });
  const { backends, checker, health } = setup(t, [server.port], { mode: 'http', path: '/healthz', timeoutMs: 150 });
  checker.track(backends);
  await checker.settled([0], 2000);
  const last = health().lastCheck!;
  t.match(last, { ok: false, detail: 'timeout after 150 ms' });
  t.ok(last.ms >= 140 && last.ms < 1000, `took ${last.ms} ms`);

  // The same server passes a TCP check: it does accept connections.
  const tcp = setup(t, [server.port], { mode: 'tcp', timeoutMs: 150 });
  tcp.checker.track(tcp.backends);
  await tcp.checker.settled([0], 2000);
  t.equal(tcp.health().state, 'healthy');
});

t.test('refused connections fail at once, with the reason', async (t) => {
  const port = await refusedPort();
  for (const mode of ['tcp', 'http'] as const) {
    const { backends, checker, health } = setup(t, [port], { mode, path: '/', timeoutMs: 5000 });
    checker.track(backends);
    await checker.settled([0], 6000);
    // The detail says which it was: a check that waited for its 5 s timeout would say so.
    t.match(health().lastCheck, { ok: false, detail: 'connect ECONNREFUSED' }, `${mode}: refused, not timed out`);
    checker.stop();
  }
});

/** Eject slot 0 as outlier detection would, for `reason`, starting now. */
function eject(table: SharedTable, reason: '5xx' | 'connect'): number {
  const until = table.now() + 30_000;
  table.set(reason === '5xx' ? C.CONSEC_5XX : C.CONSEC_FAIL, 0, 5);
  table.set(C.EJECTIONS, 0, 1);
  table.set(C.EJECTED_UNTIL, 0, until);
  return until;
}

t.test('a passing HTTP check ends an outlier ejection', async (t) => {
  const server = await httpServer(t, (_req, res) => res.end('ok'));
  const { table, backends, checker, logs } = setup(t, [server.port], { mode: 'http', path: '/' });
  checker.track(backends);
  await checker.settled([0], 2000);
  eject(table, '5xx');
  t.notOk(table.available(0, table.now()));
  await watch(() => table.available(0, table.now()), (up) => up);
  t.ok(table.get(C.EJECTED_UNTIL, 0) > 0, 'set to when it ended (0 would forget the back-off)');
  t.equal(table.get(C.CONSEC_5XX, 0), 0);
  t.ok(logs.some((l) => l.msg === 'ejection ended by a passing health check'));
});

t.test('a passing TCP check ends a connect-failure ejection, not a 5xx one', async (t) => {
  const server = await tcpServer(t);
  const { table, backends, checker } = setup(t, [server.port]);
  checker.track(backends);
  await checker.settled([0], 2000);

  const until = eject(table, '5xx');
  const before = server.connections;
  await watch(() => server.connections, (n) => n >= before + 4);
  t.equal(table.get(C.EJECTED_UNTIL, 0), until, 'accepting connections says nothing about 500s');
  t.notOk(table.available(0, table.now()));

  table.set(C.CONSEC_5XX, 0, 0);
  eject(table, 'connect');
  await watch(() => table.available(0, table.now()), (up) => up);
  t.equal(table.get(C.CONSEC_FAIL, 0), 0);
});

t.test('reconfigure: off makes every backend available, on again checks without taking them out', async (t) => {
  const server = await tcpServer(t);
  const { table, backends, checker, health } = setup(t, [server.port]);
  checker.track(backends);
  await checker.settled([0], 2000);
  const slowStart = table.get(C.SLOW_START_AT, 0);

  checker.reconfigure({ ...BASE, mode: 'off' });
  t.equal(health().state, 'unchecked');
  t.ok(table.get(C.WEIGHT, 0) > 0);
  t.equal(table.get(C.HEALTH, 0), Health.UNKNOWN);
  await sleep(20);
  const count = server.connections;
  await sleep(150);
  t.equal(server.connections, count, 'no more probes');

  checker.reconfigure({ ...BASE });
  t.equal(health().state, 'unknown');
  t.ok(table.available(0, table.now()), 'still serving while its first check runs');
  await watch(() => health().state, (s) => s === 'healthy');
  t.equal(table.get(C.SLOW_START_AT, 0), slowStart, 'it was serving all along: no slow start');
});

t.test('checks are spaced by the interval with jitter, and stop when a backend leaves', async (t) => {
  const server = await tcpServer(t);
  const { backends, checker } = setup(t, [server.port], { intervalMs: 60 });
  checker.track(backends);
  await watch(() => server.connections, (n) => n >= 8, 5000);
  const gaps = server.at.slice(1).map((at, i) => at - server.at[i]!);
  t.ok(gaps.every((g) => g >= 60 * 0.9 - 5), `gaps ${gaps.map(Math.round).join(', ')} ms are never below interval - 10%`);

  checker.track([]);
  t.same(checker.snapshot(), []);
  await sleep(20);
  const count = server.connections;
  await sleep(200);
  t.equal(server.connections, count, 'no probes after removal');
});

t.test('a removed and re-added backend is checked again before traffic', async (t) => {
  const server = await tcpServer(t);
  const { table, membership, backends, checker, health } = setup(t, [server.port]);
  checker.track(backends);
  await checker.settled([0], 2000);
  checker.track(membership.assign([]));
  checker.track(membership.assign([upstreamAt(server.port)]));
  t.equal(health().state, 'pending');
  t.notOk(table.available(0, table.now()));
  t.equal(table.get(C.WEIGHT, 0), 0);
  // Another assign while it waits (a reload) writes its weight again: track holds it again.
  checker.track(membership.assign([upstreamAt(server.port)]));
  t.equal(table.get(C.WEIGHT, 0), 0, 'still held');
  await checker.settled([0], 2000);
  t.ok(table.available(0, table.now()));
  t.ok(table.get(C.WEIGHT, 0) > 0);
});
