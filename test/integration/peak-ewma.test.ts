// Peak EWMA (the default policy) on real backends through the proxy: the faster of two backends
// takes most of the traffic, and when it turns slow the traffic moves to the other one within a
// request or two. (The policy's arithmetic is unit-tested on a fake clock in
// test/balancer/peak-ewma.test.ts.)

import t from 'tap';
import { Agent, request } from 'undici';
import { ensureBuilt, startSluice } from '../helpers/sluice.js';
import { startBackend } from '../helpers/backends.js';

/** Added latencies: far above a loopback answer (about 1 ms), short enough for a test. */
const SLOWER_MS = 60;
const SLOW_MS = 250;

t.before(ensureBuilt);

t.test('peak EWMA moves traffic off a backend that turns slow', async (t) => {
  // Phase 1: a answers SLOWER_MS late, b at once. Phase 2: a at once, b SLOW_MS late.
  let phase = 1;
  const delayed = (name: string, ms: () => number) =>
    startBackend(t, (_req, res) => {
      const wait = ms();
      if (wait > 0) setTimeout(() => res.end(name), wait);
      else res.end(name);
    });
  const a = await delayed('a', () => (phase === 1 ? SLOWER_MS : 0));
  const b = await delayed('b', () => (phase === 1 ? 0 : SLOW_MS));
  const sluice = await startSluice(t, { upstreams: [a.url, b.url], workers: 2, env: { SLUICE_BALANCER: 'peak-ewma' } });
  const agent = new Agent({ connections: 2 });
  t.teardown(() => agent.close());

  /** `total` requests, two at a time; how many each backend answered. */
  const run = async (total: number): Promise<{ a: number; b: number }> => {
    const counts = { a: 0, b: 0 };
    let next = 0;
    const client = async (): Promise<void> => {
      while (next++ < total) {
        const res = await request(`${sluice.url}/e`, { dispatcher: agent });
        const body = (await res.body.text()) as 'a' | 'b';
        t.equal(res.statusCode, 200);
        counts[body]++;
      }
    };
    await Promise.all([client(), client()]);
    return counts;
  };

  // Both are probed once (a backend without a sample takes a request), then b is cheaper.
  const first = await run(60);
  t.equal(first.a + first.b, 60);
  t.ok(first.b >= 45, `b, the faster, took most of the traffic (a ${first.a}, b ${first.b})`);

  phase = 2;
  const second = await run(60);
  t.equal(second.a + second.b, 60);
  // Round robin would send b 30 of 60. Peak EWMA sends it what was in flight when it turned slow,
  // sees the peak, and moves off; b is re-probed only once the peak has decayed below a's
  // latency (tens of seconds at the default SLUICE_EWMA_DECAY_MS of 10 s).
  t.ok(second.b >= 1, `b was tried after it turned slow (${second.b}), which is how it was seen`);
  t.ok(second.b <= 6, `b, now slow, got ${second.b} of 60; a got ${second.a}`);
});
