// Passive outlier detection (src/health/outlier.ts) on real traffic through the proxy: a backend
// that answers 5xx is ejected after its streak, counted across both workers, and one that refuses
// connections after its streak of connect failures; neither gets a request while ejected. After
// the ejection ends the backend is on probation: one more 5xx ejects it again, for longer.

import t from 'tap';
import { ensureBuilt, startSluice } from '../helpers/sluice.js';
import { refusedPort, startBackend } from '../helpers/backends.js';
import { once } from '../helpers/http-once.js';
import { rawConnect, type RawClient } from '../helpers/raw-client.js';

t.before(ensureBuilt);

/** A keep-alive connection and where its next response starts. */
interface Conn {
  client: RawClient;
  offset: number;
  /** The worker that served its last logged request. */
  worker?: number;
}

const named = (name: string, status = 200) =>
  startBackend(t, (req, res) => {
    res.statusCode = status;
    req.resume().on('end', () => res.end(name));
  });

t.test('a 5xx streak is counted across workers: 8 in a row from both workers eject the backend', async (t) => {
  const good = await named('good');
  const failing = await named('failing', 500);
  const sluice = await startSluice(t, {
    upstreams: [good.url, failing.url],
    workers: 2,
    env: {
      // A fixed rotation whose cursor the workers share: request i goes to good when i is even.
      SLUICE_BALANCER: 'round-robin',
      SLUICE_OUTLIER_CONSECUTIVE_5XX: '8',
      // Long enough that it does not come back during the test.
      SLUICE_OUTLIER_BASE_EJECTION_MS: '600000',
      SLUICE_OUTLIER_MAX_EJECTION_MS: '600000',
      SLUICE_OUTLIER_MAX_EJECTION_PERCENT: '50',
      SLUICE_PANIC_THRESHOLD_PERCENT: '0',
      SLUICE_ACCESS_LOG: 'on',
    },
  });
  let sent = 0;
  /** One request on `c`; returns its body and the worker that served it (from the access log). */
  const send = async (c: Conn): Promise<{ body: string; worker: number }> => {
    const id = `req-${sent++}`;
    await c.client.write(`GET /o HTTP/1.1\r\nHost: a\r\nX-Request-Id: ${id}\r\n\r\n`);
    const res = await c.client.response(c.offset);
    c.offset = res.end;
    const line = await sluice.waitForLog((l) => l.type === 'access' && l.requestId === id);
    c.worker = line.worker as number;
    return { body: res.body.toString(), worker: c.worker };
  };
  /** The same without waiting for the log line: the connection's worker is known by then. */
  const sendKnown = async (c: Conn): Promise<string> => {
    sent++;
    await c.client.write('GET /o HTTP/1.1\r\nHost: a\r\n\r\n');
    const res = await c.client.response(c.offset);
    c.offset = res.end;
    return res.body.toString();
  };
  // Keep-alive connections stay on the worker that accepted them: open them until both workers
  // hold one. (The kernel spreads them at random: 16 in a row on one worker, chance 2^-15, would
  // eject the backend before the test starts.)
  const byWorker = new Map<number, Conn>();
  while (byWorker.size < 2) {
    const c: Conn = { client: await rawConnect(t, sluice.port), offset: 0 };
    const { worker } = await send(c);
    if (!byWorker.has(worker)) byWorker.set(worker, c);
  }
  t.ok(failing.requests.length < 8, 'not ejected while finding the workers');

  // Every request the rotation gives the failing backend goes through the other worker than the
  // one before it, so its 500s come from both workers in turn.
  const served: { body: string; worker: number }[] = [];
  let lastFailingWorker = -1;
  const ejected = sluice.waitForLog((l) => l.msg === 'backend ejected', 10_000);
  while (failing.requests.length < 8) {
    const toFailing = sent % 2 === 1;
    const worker = toFailing ? [...byWorker.keys()].find((w) => w !== lastFailingWorker)! : [...byWorker.keys()][0]!;
    const body = await sendKnown(byWorker.get(worker)!);
    if (toFailing) {
      t.equal(body, 'failing', `request ${sent - 1} went to the failing backend, as the rotation says`);
      lastFailingWorker = worker;
    }
    served.push({ body, worker });
  }
  const line = await ejected;
  t.equal(line.backend, `127.0.0.1:${failing.port}`, 'the failing backend was ejected');
  t.equal(line.reason, '5xx');
  const failingWorkers = new Set(served.filter((a) => a.body === 'failing').map((a) => a.worker));
  t.equal(failingWorkers.size, 2, 'its streak was made of 500s seen by both workers');
  // Whose connection each was is checked, not assumed: the access log names the worker.
  for (const [worker, c] of byWorker) {
    const { worker: seen } = await send(c);
    t.equal(seen, worker, `the connection on worker ${worker} stayed there`);
  }

  const after: string[] = [];
  for (let i = 0; i < 20; i++) for (const c of byWorker.values()) after.push(await sendKnown(c));
  t.same(after, Array(40).fill('good'), 'after the ejection only the good backend served, on both workers');
  t.equal(failing.requests.length, 8, 'the failing backend got exactly its 8 requests, then none');
});

t.test('a backend refusing connections is ejected after its streak of connect failures', async (t) => {
  const good = await named('good');
  const refused = await refusedPort();
  const sluice = await startSluice(t, {
    upstreams: [good.url, `http://127.0.0.1:${refused}`],
    env: {
      SLUICE_BALANCER: 'round-robin',
      SLUICE_OUTLIER_CONSECUTIVE_FAILURES: '3',
      SLUICE_OUTLIER_BASE_EJECTION_MS: '600000',
      SLUICE_OUTLIER_MAX_EJECTION_PERCENT: '50',
      SLUICE_PANIC_THRESHOLD_PERCENT: '0',
      // Each refusal is the answer, so it can be counted.
      SLUICE_RETRIES: '0',
    },
  });
  const answers: string[] = [];
  for (let i = 0; i < 30; i++) {
    const res = await once(sluice.port, `/c/${i}`);
    answers.push(res.status === 200 ? res.body : `${res.status} ${res.headers['x-sluice-error']}`);
  }
  t.equal(answers.filter((a) => a === '502 connect').length, 3, 'exactly 3 refusals reached clients');
  t.same(answers.slice(6), Array(24).fill('good'), 'after the third, only the good backend served');
  const line = await sluice.waitForLog((l) => l.msg === 'backend ejected');
  t.equal(line.backend, `127.0.0.1:${refused}`);
  t.equal(line.reason, 'connect');
});

t.test('after its ejection a backend is on probation: one more 5xx ejects it again, for longer', async (t) => {
  const good = await named('good');
  const failing = await named('failing', 503);
  const sluice = await startSluice(t, {
    upstreams: [good.url, failing.url],
    env: {
      SLUICE_BALANCER: 'round-robin',
      SLUICE_OUTLIER_CONSECUTIVE_5XX: '2',
      SLUICE_OUTLIER_BASE_EJECTION_MS: '300',
      SLUICE_OUTLIER_MAX_EJECTION_PERCENT: '50',
      SLUICE_PANIC_THRESHOLD_PERCENT: '0',
    },
  });
  const first = sluice.waitForLog((l) => l.msg === 'backend ejected' && l.ejections === 1, 10_000);
  while (failing.requests.length < 2) await once(sluice.port, '/p');
  const ejection = await first;
  t.equal(ejection.backend, `127.0.0.1:${failing.port}`);
  t.equal(failing.requests.length, 2, 'ejected after its second 503');

  // The ejection ends after 300 ms: keep the traffic going until the backend is tried again.
  const again = sluice.waitForLog((l) => l.msg === 'backend ejected' && l.ejections === 2, 10_000);
  let served = 0;
  const others: string[] = [];
  while (failing.requests.length < 3) {
    const res = await once(sluice.port, '/p');
    if (failing.requests.length === 3) break;
    if (res.body === 'good') served++;
    else others.push(`${res.status} ${res.body}`);
  }
  t.same(others, [], 'while it was ejected, only the good backend served');
  const second = await again;
  t.equal(second.backend, `127.0.0.1:${failing.port}`, 'its first request back failed, and that alone ejected it again');
  t.equal(second.ejections, 2, 'the second ejection in a row (twice the base)');
  t.ok(served > 0, `${served} requests went to the good backend meanwhile`);
});
