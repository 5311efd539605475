import { Worker } from 'node:worker_threads';
import t from 'tap';
import { l4ResourceLimits } from '../../src/supervisor/l4-supervisor.js';

t.test('l4ResourceLimits: the young generation cap, or V8 sizing for 0', async (t) => {
  t.same(l4ResourceLimits(4), { maxYoungGenerationSizeMb: 4 });
  t.same(l4ResourceLimits(0), {});
});

t.test('a thread started with the cap keeps its young generation within it while allocating', async (t) => {
  // What the setting relies on: V8 on this Node honours the cap for a worker's heap (docs/l4.md,
  // "Memory"). The worker churns short-lived objects, as connections do, then reports its new space.
  const code = `
    const { parentPort } = require('node:worker_threads');
    const v8 = require('node:v8');
    let keep = null;
    for (let i = 0; i < 2e6; i++) keep = { i, a: [i, i + 1], s: 'x' + i };
    const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    parentPort.postMessage({ newSpace: space.space_size, kept: keep.i });
  `;
  const sizeOf = (limits: ReturnType<typeof l4ResourceLimits>) =>
    new Promise<number>((resolve, reject) => {
      const w = new Worker(code, { eval: true, resourceLimits: limits });
      w.once('message', (m: { newSpace: number }) => resolve(m.newSpace));
      w.once('error', reject);
    });
  const capped = await sizeOf(l4ResourceLimits(4));
  const own = await sizeOf(l4ResourceLimits(0));
  t.ok(capped <= 4 * 2 ** 20, `new space ${capped} bytes within the 4 MiB cap`);
  t.ok(own > capped, `V8's own sizing grew it further (${own} bytes)`);
});
