// Crash recovery is bounded and repeatable (SLUICE_WORKERS=1, so nothing else could serve): the
// one serving worker crashes three times under fresh-connection load while a backend holds a
// keep-alive connection busy (a response that starts and never ends). Each time the warm spare
// takes over, the crashed thread ends by itself (its busy upstream socket destroyed), its table
// column is freed and a new spare stands by, so the next crash is covered too. A crashed thread
// that cannot end by itself (the 'linger' hook) is terminated after its bound, without the native
// abort terminate() causes while uWS sockets are open.

import t from 'tap';
import http from 'node:http';
import { ensureBuilt, startSluice, type LogLine, type Sluice } from '../helpers/sluice.js';
import { startBackend } from '../helpers/backends.js';
import { rawConnect } from '../helpers/raw-client.js';

t.before(ensureBuilt);

/** Generous guards against a hang; nothing here measures time. */
const LOG_WAIT_MS = 20_000;
const CRASHES = 3;

function nativeTrouble(stderr: string): boolean {
  return /Assertion failed|Aborted|core dumped|FATAL ERROR|uv_loop_close/i.test(stderr);
}

/** One GET on a fresh connection; its status, or 0 when the connection failed. */
function freshGet(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  });
}

/** Fresh-connection GETs back to back from `loops` clients until stop(); the statuses seen. */
function load(port: number, loops: number): { statuses: number[]; stop(): Promise<void> } {
  const statuses: number[] = [];
  let running = true;
  const runs = Array.from({ length: loops }, async () => {
    while (running) statuses.push(await freshGet(port, '/ok'));
  });
  return {
    statuses,
    async stop() {
      running = false;
      await Promise.all(runs);
    },
  };
}

/** SIGUSR2 (worker 0 throws), then the log lines of its recovery, in the order they must come. */
async function crashAndRecover(sluice: Sluice): Promise<{ crashed: LogLine; restarted: LogLine; exited: LogLine; spare: LogLine }> {
  const mark = sluice.logs().length;
  sluice.child.kill('SIGUSR2');
  const crashed = await sluice.waitForLog((l) => l.msg === 'worker crashed', LOG_WAIT_MS, mark);
  const restarted = await sluice.waitForLog((l) => l.msg === 'worker restarted', LOG_WAIT_MS, mark);
  const exited = await sluice.waitForLog((l) => l.msg === 'worker thread exited' && l.worker === crashed.worker, LOG_WAIT_MS, mark);
  // The new spare can only start once the crashed thread has freed its table column.
  const spare = await sluice.waitForLog((l) => l.msg === 'spare worker ready', LOG_WAIT_MS, mark);
  return { crashed, restarted, exited, spare };
}

t.test('one worker crashes three times under load with a busy upstream connection, and serves after each', async (t) => {
  const slowClosed: Promise<void>[] = [];
  const backend = await startBackend(t, (req, res) => {
    if (req.url === '/slow') {
      // Starts a response and never finishes it: Sluice's keep-alive connection here stays busy.
      slowClosed.push(new Promise((resolve) => res.on('close', () => resolve())));
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
      res.write('first bytes ');
    } else {
      res.end('ok');
    }
  });
  const sluice = await startSluice(t, { upstreams: [backend.url], workers: 1, testHooks: true });
  t.equal(await freshGet(sluice.port, '/ok'), 200, 'serving before the first crash');
  const traffic = load(sluice.port, 2);
  t.teardown(() => traffic.stop()); // a failed assertion must not leave the load running

  for (let round = 1; round <= CRASHES; round++) {
    const client = await rawConnect(t, sluice.port);
    await client.write('GET /slow HTTP/1.1\r\nHost: a\r\n\r\n');
    t.ok(await client.waitFor((text) => text.includes('first bytes'), LOG_WAIT_MS), `crash ${round}: a slow response is under way`);
    const busyUpstream = slowClosed[round - 1]!;

    const { crashed, restarted, exited, spare } = await crashAndRecover(sluice);
    t.equal(restarted.spare, true, `crash ${round}: the warm spare took over (worker ${crashed.worker} → ${restarted.worker})`);
    t.equal(exited.terminated, false, `crash ${round}: the crashed thread ended by itself (code ${exited.code})`);
    t.equal(spare.worker, crashed.worker, `crash ${round}: a new spare stands by in the freed column`);
    t.equal(await freshGet(sluice.port, '/ok'), 200, `crash ${round}: serving on a fresh connection after the restart`);
    await busyUpstream;
    t.pass(`crash ${round}: the busy upstream connection was closed, not left to the backend`);
    t.ok(await client.waitClosed(LOG_WAIT_MS), `crash ${round}: the slow response's client connection was closed`);
  }

  await traffic.stop();
  const ok = traffic.statuses.filter((s) => s === 200).length;
  const failed = traffic.statuses.length - ok;
  t.ok(ok > 0, `${ok} load requests served`);
  // What a crash costs is connections, never a wrong answer: requests in flight on the crashing
  // worker are reset, and for the moment between its listen socket closing and the spare's opening
  // new connections are refused. How many that is depends on scheduling, so it is only reported.
  t.same(
    traffic.statuses.filter((s) => s !== 200 && s !== 0),
    [],
    `the only failures are connection failures (${failed} of ${traffic.statuses.length} across ${CRASHES} crashes)`,
  );

  const snapshot = await sluice.snapshot();
  t.equal(snapshot.restarts, CRASHES, 'every restart counted');
  t.equal(snapshot.slots[0]!.inFlight, 0, "in-flight back to 0 (the dead workers' requests released)");
  t.same(snapshot.slots[0]!.workers, [0, 0], 'every worker column back to 0');
  t.equal(await sluice.stop(), 0, 'still drains and exits 0');
  t.notOk(nativeTrouble(sluice.stderr()), 'no native assertion or abort');
});

t.test('a crashed worker that cannot end by itself is terminated, safely, and replaced', async (t) => {
  const backend = await startBackend(t);
  const sluice = await startSluice(t, { upstreams: [backend.url], workers: 1, testHooks: true, env: { SLUICE_TEST_HOOKS: 'linger' } });
  for (let round = 1; round <= 2; round++) {
    const mark = sluice.logs().length;
    const { crashed, restarted, exited, spare } = await crashAndRecover(sluice);
    const terminating = sluice.logs().find((l, i) => i >= mark && l.msg === 'crashed worker did not exit; terminating it');
    t.equal(terminating?.worker, crashed.worker, `crash ${round}: the supervisor terminated the lingering thread`);
    t.equal(exited.terminated, true, `crash ${round}: its exit was the termination`);
    t.equal(restarted.spare, true, `crash ${round}: the warm spare took over`);
    t.equal(spare.worker, crashed.worker, `crash ${round}: a new spare stands by in the freed column`);
    t.equal(await freshGet(sluice.port, '/'), 200, `crash ${round}: serving after the restart`);
  }
  t.equal(await sluice.stop(), 0, 'still drains and exits 0');
  t.notOk(nativeTrouble(sluice.stderr()), 'terminate() did not abort the process');
});
