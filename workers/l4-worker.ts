// L4 thread: runs the L4 listeners the control plane assigns it (docs/l4.md, "Threads"), over the
// same shared table as the HTTP workers, with its own ConnLedger row so that its open-connection
// counts can be taken off the table if it dies. Follows the control plane's messages: new
// configuration (pools swapped for new connections; listeners started or drained), drain, stats.

import { parentPort, workerData } from 'node:worker_threads';
import type { ResolvedConfig } from '../src/config/types.js';
import type { Backend } from '../src/model/upstream.js';
import { createLogger } from '../src/log.js';
import { SharedTable } from '../src/state/table.js';
import { ConnLedger } from '../src/l4/ledger.js';
import { L4Runtime } from '../src/l4/runtime.js';
import type { FromL4, ToL4 } from '../src/supervisor/l4-messages.js';

export interface L4WorkerData {
  /** Which L4 thread this is (0-based), for logs. */
  thread: number;
  buffer: SharedArrayBuffer;
  /** This thread's ConnLedger row, created (and undone after a death) by the control plane. */
  ledger: SharedArrayBuffer;
  config: ResolvedConfig;
  backends: Backend[];
  seed: number;
  /** Names of the listeners this thread runs. */
  listeners: string[];
  testHooks: boolean;
}

const data = workerData as L4WorkerData;
const port = parentPort!;
const log = createLogger(data.config.logLevel, { l4: data.thread });
const send = (msg: FromL4): void => port.postMessage(msg);
const table = new SharedTable(data.buffer);
const runtime = new L4Runtime(table, new ConnLedger(table, data.ledger), log);

// Unlike a uWS thread, nothing here aborts the process when the thread ends with sockets open:
// log, and let the thread end; the supervisor undoes the ledger and starts a new one.
process.on('uncaughtException', (err) => {
  log.fatal({ err: err.message, stack: err.stack }, 'l4 thread crashed');
  process.exit(1);
});

port.on('message', (msg: ToL4) => {
  switch (msg.type) {
    case 'config':
      log.level = msg.config.logLevel;
      runtime.apply(msg.config, msg.backends, msg.seed, new Set(msg.listeners)).catch((err: Error) => {
        log.error({ err: err.message }, 'reload: an L4 listener could not start');
      });
      return;
    case 'drain':
      void runtime.drain(msg.timeoutMs).then(() => {
        send({ type: 'drained' });
        port.close();
      });
      return;
    case 'stats':
      send({ type: 'stats', id: msg.id, listeners: runtime.snapshot() });
      return;
    case 'crash':
      if (data.testHooks) setImmediate(() => { throw new Error('crash requested by test hook'); });
      return;
  }
});

try {
  await runtime.apply(data.config, data.backends, data.seed, new Set(data.listeners));
  send({ type: 'ready', addresses: runtime.snapshot().map((l) => ({ name: l.name, port: Number(l.address.slice(l.address.lastIndexOf(':') + 1)) })) });
} catch (err) {
  send({ type: 'fatal', message: (err as Error).message });
  await runtime.drain(0);
  port.close();
}
