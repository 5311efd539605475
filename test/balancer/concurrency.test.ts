// Two real worker threads acquire and release on the same SharedTable. First a handshake makes
// them overlap for certain: both hold two acquisitions at once, and each must read the other's
// (4 in flight). Then both hammer acquire/release in ten rounds fenced by barriers, so neither can
// finish before the other is well under way; every increment must be matched, so the shared
// in-flight count (and each worker's own column) ends at exactly 0.
//
// The workers run the real table.ts: eval workers do not get tap's TypeScript loader, so the test
// transpiles layout.ts and table.ts (types stripped, nothing else) into a temporary folder first.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import ts from 'typescript';
import { C, H, HEADER_WORDS, workerCell } from '../../src/state/layout.js';
import { SharedTable } from '../../src/state/table.js';

function transpile(relative: string): string {
  const source = readFileSync(new URL(relative, import.meta.url), 'utf8');
  return ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
  }).outputText;
}

const code = `
const { workerData, parentPort } = require('node:worker_threads');
import(workerData.tableUrl).then(({ SharedTable }) => {
  const { buffer, worker, slot, rounds, barrier } = workerData;
  const table = new SharedTable(buffer, worker);
  const words = new Int32Array(buffer);
  // Count in at header word \`word\` and wait until \`n\` arrivals are in.
  const arrive = (word, n) => {
    Atomics.add(words, word, 1);
    Atomics.notify(words, word);
    for (let v; (v = Atomics.load(words, word)) < n; ) Atomics.wait(words, word, v, 50);
  };
  table.acquire(slot);
  table.acquire(slot);
  arrive(barrier, 2); // both hold two now
  const both = table.inFlight(slot);
  arrive(barrier + 1, 2); // both have looked
  table.release(slot);
  table.release(slot);
  arrive(barrier + 2, 2); // both released
  const none = table.inFlight(slot);
  arrive(barrier + 3, 2); // both have looked
  let peak = 0;
  const chunk = rounds / 10;
  for (let round = 0; round < 10; round++) {
    for (let i = 0; i < chunk; i++) {
      table.acquire(slot);
      table.acquire(slot);
      peak = Math.max(peak, table.inFlight(slot));
      table.release(slot);
      table.release(slot);
    }
    arrive(barrier + 4, 2 * (round + 1));
  }
  parentPort.postMessage({ both, none, peak });
});
`;

t.test('two workers see each other’s acquisitions, and in-flight returns to exactly 0 after 2 × 10k rounds', async (t) => {
  const dir = t.testdir({
    'package.json': JSON.stringify({ type: 'module' }),
    state: {
      'layout.js': transpile('../../src/state/layout.ts'),
      'table.js': transpile('../../src/state/table.ts'),
    },
    model: { 'limits.js': transpile('../../src/model/limits.ts') },
  });
  const tableUrl = pathToFileURL(join(dir, 'state', 'table.js')).href;
  const table = new SharedTable();
  const slot = 3;
  // Five spare header words (the last named one is EPOCH_LO) for the barriers.
  const barrier = HEADER_WORDS - 5;
  t.ok(barrier > H.EPOCH_LO, 'the barrier words are spare');
  const run = (worker: number) =>
    new Promise<{ both: number; none: number; peak: number }>((resolve, reject) => {
      const w = new Worker(code, {
        eval: true,
        workerData: { buffer: table.buffer, worker, slot, rounds: 10_000, tableUrl, barrier },
      });
      w.once('message', resolve);
      w.once('error', reject);
      w.once('exit', (exit) => exit !== 0 && reject(new Error(`worker exited with ${exit}`)));
    });
  const results = await Promise.all([run(0), run(1)]);
  t.same(results.map((r) => r.both), [4, 4], "while both held two, each saw the other's: 4 in flight");
  t.same(results.map((r) => r.none), [0, 0], 'once both released, each saw 0');
  t.ok(results.every((r) => r.peak >= 2 && r.peak <= 4), `peaks ${results.map((r) => r.peak)}: 2 own + up to 2 from the other worker`);
  t.equal(table.inFlight(slot), 0);
  t.equal(table.get(C.IN_FLIGHT, slot), 0);
  t.equal(Atomics.load(table.words, workerCell(0, slot)), 0);
  t.equal(Atomics.load(table.words, workerCell(1, slot)), 0);
});
