// The shared table after real traffic: 10 000 requests through 2 workers to 2 backends, 50 at a
// time over keep-alive connections, with bodies, HEADs, backend 5xx and client aborts mixed in.
// Afterwards every backend's in-flight count is back to 0 and every request was counted once.

import t from 'tap';
import { Pool, request } from 'undici';
import { ensureBuilt, startSluice } from '../helpers/sluice.js';
import { startBackend } from '../helpers/backends.js';
import { until } from '../helpers/wait.js';

const TOTAL = 10_000;
const CONCURRENCY = 50;
/**
 * Every ABORT_EVERY-th request goes to a path the backend never answers, and is abandoned by the
 * client once the backend holds it (so it certainly reached Sluice: an abort still queued in the
 * client would not).
 */
const ABORT_EVERY = 500;

t.before(ensureBuilt);

t.test('in-flight returns to 0 after 10k requests through 2 workers', async (t) => {
  const arrived = new Map<string, () => void>();
  const handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void => {
    const [path, id] = req.url!.split('?');
    req.resume();
    req.on('end', () => {
      if (path === '/slow') {
        // Never answered: the client abandons it once it is here (see below).
        arrived.get(id!)?.();
        return;
      }
      if (path === '/fail') {
        res.statusCode = 503;
        return void res.end('busy');
      }
      res.end('ok');
    });
  };
  const backends = [await startBackend(t, handler), await startBackend(t, handler)];
  const sluice = await startSluice(t, {
    upstreams: backends.map((b) => b.url),
    workers: 2,
    testHooks: true,
    // The 503s below are part of the mix, not a reason to eject a backend.
    env: { SLUICE_BALANCER: 'least-request', SLUICE_OUTLIER_CONSECUTIVE_5XX: '0' },
  });
  const pool = new Pool(sluice.url, { connections: CONCURRENCY, pipelining: 1 });
  t.teardown(() => pool.destroy());

  const statuses = new Map<number | string, number>();
  const count = (k: number | string): void => void statuses.set(k, (statuses.get(k) ?? 0) + 1);
  let next = 0;
  const one = async (i: number): Promise<void> => {
    if (i % ABORT_EVERY === 0) {
      const controller = new AbortController();
      arrived.set(String(i), () => controller.abort());
      try {
        const res = await pool.request({ path: `/slow?${i}`, method: 'GET', signal: controller.signal });
        await res.body.text();
        count('late');
      } catch (err) {
        // Only our own abort counts as one; a reset or any other failure is counted by its name,
        // and the totals below then fail.
        const e = err as Error & { code?: string };
        count(e.name === 'AbortError' && controller.signal.aborted ? 'aborted' : `error ${e.code ?? e.name}: ${e.message}`);
      }
      return;
    }
    const kind = i % 10;
    const res =
      kind === 1
        ? await pool.request({ path: '/post', method: 'POST', body: 'x'.repeat(i % 3000) })
        : kind === 2
          ? await pool.request({ path: '/head', method: 'HEAD' })
          : kind === 3 && i % 30 === 3
            ? await pool.request({ path: '/fail', method: 'GET' })
            : await pool.request({ path: '/ok', method: 'GET' });
    await res.body.text();
    count(res.statusCode);
  };
  const worker = async (): Promise<void> => {
    while (next < TOTAL) await one(next++);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));

  const done = [...statuses.values()].reduce((a, b) => a + b, 0);
  t.equal(done, TOTAL, 'every request finished');
  t.equal(statuses.get('aborted'), TOTAL / ABORT_EVERY, 'the abandoned ones were aborted, by the client');
  // /fail is every i with i % 30 === 3 (never an abandoned one: those are multiples of 500).
  const FAILS = Math.ceil((TOTAL - 3) / 30);
  t.equal(statuses.get(503), FAILS, 'every backend 503 passed through, and no 503 of Sluice’s own');
  t.equal(statuses.get(200), TOTAL - FAILS - TOTAL / ABORT_EVERY, 'every other request answered 200');
  t.same(
    [...statuses.keys()].filter((k) => k !== 200 && k !== 503 && k !== 'aborted'),
    [],
    'nothing else: no proxy errors, no resets',
  );

  // An aborted request's upstream exchange ends when Sluice sees the client go: wait for the
  // backend to see each abandoned request's connection close.
  await until('the backend to see every abandoned request aborted', () => backends[0]!.aborted + backends[1]!.aborted >= TOTAL / ABORT_EVERY);
  const snap = await sluice.snapshot();
  t.equal(snap.slots.length, 2, 'two backends in the table');
  for (const slot of snap.slots) {
    t.equal(slot.inFlight, 0, `backend ${slot.slot}: nothing in flight`);
    // Two serving workers' columns and the warm spare's.
    t.same(slot.workers, [0, 0, 0], `backend ${slot.slot}: nothing in flight in either worker (or the spare)`);
    t.ok(slot.requests > TOTAL / 10, `backend ${slot.slot} took its share (${slot.requests})`);
  }
  t.equal(
    snap.slots.reduce((sum, s) => sum + s.requests, 0),
    TOTAL,
    'every request counted exactly once',
  );
  // Each request reached a backend once, plus what Sluice sent again: a GET pipelined behind a
  // /slow one (never answered) goes out again on another connection (docs/performance.md), and
  // the backend may have seen its first copy too. Those are counted as retries; a POST never is.
  const arrivals = [...backends[0]!.requests, ...backends[1]!.requests];
  const resent = snap.slots.reduce((sum, s) => sum + s.retries, 0);
  t.ok(arrivals.length >= TOTAL && arrivals.length <= TOTAL + resent, `reached a backend once, or again as a counted re-send (${arrivals.length} for ${TOTAL}, ${resent} re-sent)`);
  t.equal(arrivals.filter((r) => r.method === 'POST').length, TOTAL / 10, 'every POST reached a backend exactly once');

  // Still serving, and still balanced to zero after one more.
  const res = await request(`${sluice.url}/ok`);
  t.equal(await res.body.text(), 'ok');
  t.equal((await sluice.snapshot()).slots.reduce((sum, s) => sum + s.inFlight, 0), 0);
});
