// Two real worker threads hammer acquire/release on the same SharedTable: every increment must be
// matched, so the shared in-flight count (and each worker's own column) ends at exactly 0.
//
// The workers run the real table.ts: eval workers do not get tap's TypeScript loader, so the test
// transpiles layout.ts and table.ts (types stripped, nothing else) into a temporary folder first.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import ts from 'typescript';
import { C, H, workerCell } from '../../src/state/layout.js';
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
  Atomics.add(words, barrier, 1);
  while (Atomics.load(words, barrier) < 2) {} // start together so the loops overlap
  let peak = 0;
  for (let i = 0; i < rounds; i++) {
    table.acquire(slot);
    table.acquire(slot);
    peak = Math.max(peak, table.inFlight(slot));
    table.release(slot);
    table.release(slot);
  }
  parentPort.postMessage(peak);
});
`;

t.test('in-flight returns to exactly 0 after 2 × 10k concurrent acquire/release rounds', async (t) => {
  const dir = t.testdir({
    'package.json': JSON.stringify({ type: 'module' }),
    'layout.js': transpile('../../src/state/layout.ts'),
    'table.js': transpile('../../src/state/table.ts'),
  });
  const tableUrl = pathToFileURL(join(dir, 'table.js')).href;
  const table = new SharedTable();
  const slot = 3;
  const barrier = H.EPOCH_LO + 8; // a spare header word (HEADER_WORDS = 16)
  const run = (worker: number) =>
    new Promise<number>((resolve, reject) => {
      const w = new Worker(code, {
        eval: true,
        workerData: { buffer: table.buffer, worker, slot, rounds: 10_000, tableUrl, barrier },
      });
      w.once('message', resolve);
      w.once('error', reject);
      w.once('exit', (exit) => exit !== 0 && reject(new Error(`worker exited with ${exit}`)));
    });
  const peaks = await Promise.all([run(0), run(1)]);
  t.equal(table.inFlight(slot), 0);
  t.equal(table.get(C.IN_FLIGHT, slot), 0);
  t.equal(Atomics.load(table.words, workerCell(0, slot)), 0);
  t.equal(Atomics.load(table.words, workerCell(1, slot)), 0);
  t.ok(peaks.every((p) => p >= 2 && p <= 4), `peaks ${peaks}: 2 own + up to 2 from the other worker`);
});
