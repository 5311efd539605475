// Retries through the real proxy (forward.ts): an idempotent request whose backend refuses the
// connection goes to another backend; a POST does not; SLUICE_RETRIES caps the attempts; the retry
// budget runs out; and a reused keep-alive connection that the backend closed is retried once, on
// a fresh connection to the same backend. Every answer is checked for which backend gave it, and
// the access log's `retries` field for what Sluice did on the way.

import t from 'tap';
import { ensureBuilt, startSluice, type Sluice } from '../helpers/sluice.js';
import { refusedPort, startBackend, startRawBackend, onRequestHeads } from '../helpers/backends.js';
import { once } from '../helpers/http-once.js';

t.before(ensureBuilt);

/** A backend that answers every request with its name. */
const named = (name: string) => startBackend(t, (req, res) => req.resume().on('end', () => res.end(name)));

/** The access-log line of the request sent with X-Request-Id `id` (lines are flushed within 100 ms). */
function accessLine(sluice: Sluice, id: string) {
  return sluice.waitForLog((l) => l.type === 'access' && l.requestId === id);
}

// Round robin makes the order of first picks fixed (dead, good, dead, good, ...); outlier
// detection is off so the refusing backend stays in the rotation for every request.
const fixedOrder = {
  SLUICE_BALANCER: 'round-robin',
  SLUICE_OUTLIER_CONSECUTIVE_FAILURES: '0',
  SLUICE_ACCESS_LOG: 'on',
};

t.test('an idempotent request refused by one backend is answered by the other; a POST is not retried', async (t) => {
  const dead = await refusedPort();
  const good = await named('good');
  const sluice = await startSluice(t, {
    upstreams: [`http://127.0.0.1:${dead}`, good.url],
    // A budget of 100% deposits a whole retry per request: here it never limits.
    env: { ...fixedOrder, SLUICE_RETRIES: '1', SLUICE_RETRY_BUDGET_PERCENT: '100' },
  });

  let retried = 0;
  for (let i = 0; i < 10; i++) {
    const res = await once(sluice.port, `/r/${i}`, { headers: { 'x-request-id': `get-${i}` } });
    t.equal(res.status, 200, `GET ${i}: 200`);
    t.equal(res.body, 'good', `GET ${i}: answered by the live backend`);
  }
  for (let i = 0; i < 10; i++) {
    const line = await accessLine(sluice, `get-${i}`);
    t.equal(line.backend, `127.0.0.1:${good.port}`);
    if (line.retries === 1) retried++;
    else t.equal(line.retries, 0, `GET ${i}: at most one retry`);
  }
  // Round robin sends at least every other first pick to the refusing backend (more: the retry's
  // own pick advances the shared cursor too).
  t.ok(retried >= 5, `${retried} of 10 GETs were first sent to the refusing backend and retried`);
  t.equal(good.requests.filter((r) => r.method === 'GET').length, 10, 'the live backend saw each GET once');

  // The same rotation for POSTs: the ones whose pick is the refusing backend fail, unretried.
  const before = good.requests.length;
  const statuses: number[] = [];
  for (let i = 0; i < 10; i++) {
    const res = await once(sluice.port, `/p/${i}`, { method: 'POST', body: 'data', headers: { 'x-request-id': `post-${i}` } });
    statuses.push(res.status);
    if (res.status === 502) t.equal(res.headers['x-sluice-error'], 'connect', `POST ${i}: the connect failure is the answer`);
    else t.equal(res.body, 'good', `POST ${i}: answered by the live backend`);
  }
  for (let i = 0; i < 10; i++) t.equal((await accessLine(sluice, `post-${i}`)).retries, 0, `POST ${i}: not retried`);
  t.equal(statuses.filter((s) => s === 502).length, 5, 'half the POSTs went to the refusing backend and were not retried');
  t.equal(statuses.filter((s) => s === 200).length, 5);
  t.equal(good.requests.length - before, 5, 'the live backend saw only the POSTs picked for it');
});

t.test('SLUICE_RETRIES=1: a request whose retry also fails gets the failure, after exactly one retry', async (t) => {
  const [dead1, dead2] = [await refusedPort(), await refusedPort()];
  const good = await named('good');
  const sluice = await startSluice(t, {
    upstreams: [`http://127.0.0.1:${dead1}`, `http://127.0.0.1:${dead2}`, good.url],
    env: { ...fixedOrder, SLUICE_RETRIES: '1', SLUICE_RETRY_BUDGET_PERCENT: '100' },
  });
  // With the shared cursor the picks run dead1 → good, good, dead1 → dead2, good, ...: some
  // requests draw both refusing backends.
  const answers = [];
  for (let i = 0; i < 12; i++) answers.push(await once(sluice.port, '/c', { headers: { 'x-request-id': `cap-${i}` } }));
  let failed = 0;
  for (let i = 0; i < 12; i++) {
    const res = answers[i]!;
    const line = await accessLine(sluice, `cap-${i}`);
    if (res.status === 502) {
      failed++;
      t.equal(res.headers['x-sluice-error'], 'connect');
      t.equal(line.retries, 1, `request ${i}: failed after one retry, not more`);
    } else {
      t.equal(res.body, 'good');
      t.ok((line.retries as number) <= 1, `request ${i}: ${line.retries} retries`);
    }
  }
  t.ok(failed > 0, `${failed} requests drew both refusing backends and were not tried a third time`);
});

t.test('the retry budget runs out: with 0% only the floor of 3 retries a second is allowed', async (t) => {
  const dead = await refusedPort();
  const good = await named('good');
  const sluice = await startSluice(t, {
    upstreams: [`http://127.0.0.1:${dead}`, good.url],
    env: { ...fixedOrder, SLUICE_RETRIES: '1', SLUICE_RETRY_BUDGET_PERCENT: '0' },
  });
  const answers = [];
  for (let i = 0; i < 40; i++) answers.push(await once(sluice.port, '/b', { headers: { 'x-request-id': `budget-${i}` } }));
  const outcomes: { status: number; retries: number; time: number }[] = [];
  for (let i = 0; i < 40; i++) {
    const res = answers[i]!;
    const line = await accessLine(sluice, `budget-${i}`);
    if (res.status !== 200) t.equal(res.headers['x-sluice-error'], 'connect', `request ${i}: refused, not retried`);
    outcomes.push({ status: res.status, retries: line.retries as number, time: line.time as number });
  }
  const refused = outcomes.filter((o) => o.status === 502);
  const retried = outcomes.filter((o) => o.retries === 1);
  t.ok(retried.length > 0, `the floor allowed ${retried.length} retries`);
  t.ok(retried.every((o) => o.status === 200), 'the retried ones were answered');
  t.ok(refused.every((o) => o.retries === 0), 'the refused ones were not retried');
  t.ok(refused.length > 0, `the budget ran out: ${refused.length} of 20 were not retried`);
  // The floor refills once a second, so it may have refilled while the 40 requests ran: at most
  // 3 per started second of the span the requests took (measured, not bounded).
  const seconds = Math.floor((outcomes.at(-1)!.time - outcomes[0]!.time) / 1000) + 2;
  t.ok(retried.length <= 3 * seconds, `${retried.length} retries within ${seconds} floor windows`);
});

t.test('a reused connection the backend closed is retried once on a fresh one; a POST or a fresh connection is not', async (t) => {
  // Each backend connection answers its first request (keep-alive) and closes without a word on
  // its second: exactly what a backend's keep-alive timeout does to a pooled connection.
  const backend = await startRawBackend(t, (socket, index) => {
    let n = 0;
    onRequestHeads(socket, (head) => {
      if (++n === 1 && !head.includes(' /drop ')) {
        const body = `conn-${index}`;
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      } else {
        socket.destroy();
      }
    });
  });
  // One worker, one backend, no retries elsewhere: the only retry left is the fresh-connection one.
  const sluice = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_RETRIES: '0', SLUICE_ACCESS_LOG: 'on' } });
  const heads = (conn: number): string[] => Buffer.concat(backend.received[conn] ?? []).toString('latin1').match(/^[A-Z]+ \S+/gm) ?? [];

  const first = await once(sluice.port, '/a');
  t.equal(first.body, 'conn-0', 'the first request opens connection 0');

  const second = await once(sluice.port, '/b', { headers: { 'x-request-id': 'stale' } });
  t.equal(second.status, 200, 'the request on the closed connection was answered');
  t.equal(second.body, 'conn-1', 'by a fresh connection');
  t.same(heads(0), ['GET /a', 'GET /b'], 'connection 0 took /b and closed');
  t.same(heads(1), ['GET /b'], 'connection 1 carried the retry');
  t.equal((await sluice.waitForLog((l) => l.type === 'access' && l.requestId === 'stale')).retries, 1, 'logged as one retry');

  // Connection 1 is pooled with one use: a POST on it meets the close and is not repeated.
  const post = await once(sluice.port, '/c', { method: 'POST', body: 'x' });
  t.equal(post.status, 502, 'a POST on the closed connection fails');
  t.equal(post.headers['x-sluice-error'], 'reset');
  t.same(heads(1), ['GET /b', 'POST /c'], 'the POST reached connection 1 once');
  t.equal(backend.connections, 2, 'and no fresh connection was opened for it');

  // /drop closes even a fresh connection: the reused one is retried once, the fresh one is not.
  const prime = await once(sluice.port, '/d');
  t.equal(prime.body, 'conn-2');
  const drop = await once(sluice.port, '/drop');
  t.equal(drop.status, 502, 'closed on the reused and on the fresh connection: 502');
  t.equal(drop.headers['x-sluice-error'], 'reset');
  t.same(heads(2), ['GET /d', 'GET /drop'], 'tried on the reused connection');
  t.same(heads(3), ['GET /drop'], 'and once on a fresh one');
  t.equal(backend.connections, 4, 'no third attempt');
});
