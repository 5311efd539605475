import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import t from 'tap';
import { ConnLedger } from '../../src/l4/ledger.js';
import { C } from '../../src/state/layout.js';
import { ensureBuilt } from '../helpers/sluice.js';
import { connect, echo, newTable, until } from './fixtures/net.js';

t.test('open/close mirror the shared column; forget undoes one thread', async (t) => {
  const table = newTable();
  const a = new ConnLedger(table);
  const b = new ConnLedger(table);
  a.open(3);
  a.open(3);
  b.open(3);
  a.close(3);
  t.equal(table.get(C.OPEN_CONNS, 3), 2);
  t.equal(a.count(3), 1);
  t.equal(ConnLedger.forget(table, a.buffer), 1);
  t.equal(table.get(C.OPEN_CONNS, 3), 1, "only the dead thread's share is taken off");
  t.equal(a.count(3), 0);
  t.throws(() => new ConnLedger(table, new SharedArrayBuffer(8)));
});

t.test('an L4 worker thread that dies with open connections: the control plane restores the counts', async (t) => {
  await ensureBuilt(); // the worker runs the built JavaScript
  const dist = pathToFileURL(resolve('dist/src')).href + '/';
  const table = newTable();
  const be = await echo(t);
  const ledger = new SharedArrayBuffer(1024 * 4);
  table.set(C.WEIGHT, 0, 100);
  // The worker builds its own views over the same buffers, as the real L4 thread will.
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    (async () => {
      const { SharedTable } = await import('${dist}state/table.js');
      const { createPolicy } = await import('${dist}balancer/registry.js');
      const { L4Pool } = await import('${dist}l4/pool.js');
      const { ConnLedger } = await import('${dist}l4/ledger.js');
      const { TcpProxy } = await import('${dist}l4/tcp-proxy.js');
      const table = new SharedTable(workerData.table);
      const backends = [{ slot: 0, weight: 1, id: 'echo', host: '127.0.0.1', port: workerData.port }];
      const options = { panicThresholdPercent: 50, leastRequestBias: 1, ewmaDecayMs: 10000, ewmaDefaultRttMs: 10, slowStartMs: 0, maglevTableSize: 65537, seed: 1 };
      const pool = new L4Pool({ name: 'echo', backends, policy: createPolicy('least-conn', table, backends, options) });
      const p = new TcpProxy({ host: '127.0.0.1', port: 0, table, pool, ledger: new ConnLedger(table, workerData.ledger) });
      parentPort.postMessage((await p.start()).port);
    })();`;
  const w = new Worker(code, { eval: true, workerData: { table: table.buffer, ledger, port: be.port } });
  const port = await new Promise<number>((r) => w.once('message', r));
  const clients = [await connect(port), await connect(port), await connect(port)];
  for (const c of clients) c.on('error', () => {});
  await until(() => table.get(C.OPEN_CONNS, 0) === 3);
  await w.terminate(); // a crash, as far as its sockets and counters are concerned
  t.equal(table.get(C.OPEN_CONNS, 0), 3, 'the dead thread never released them');
  t.equal(ConnLedger.forget(table, ledger), 3);
  t.equal(table.get(C.OPEN_CONNS, 0), 0, 'restored exactly');
  for (const c of clients) c.destroy();
});
