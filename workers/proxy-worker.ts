// Proxy worker thread: builds its view of the shared table, its pools and policy, listens on the
// shared port, and follows the control plane's messages (new membership, drain).

import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../src/config/types.js';
import { createLogger } from '../src/log.js';
import { SharedTable } from '../src/state/table.js';
import { ProxyContext, type Backend } from '../src/http/context.js';
import { ProxyApp } from '../src/http/proxy-app.js';
import type { ToWorker, FromWorker } from '../src/supervisor/messages.js';

export interface ProxyWorkerData {
  index: number;
  buffer: SharedArrayBuffer;
  config: Config;
  backends: Backend[];
  seed: number;
  testHooks: boolean;
}

const data = workerData as ProxyWorkerData;
const port = parentPort!;
const log = createLogger(data.config.logLevel, { worker: data.index });
const send = (msg: FromWorker): void => port.postMessage(msg);

const table = new SharedTable(data.buffer, data.index);
const ctx = new ProxyContext(data.config, table, data.backends, log, data.seed);
const app = new ProxyApp(ctx);

port.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'backends':
      ctx.setBackends(msg.backends, msg.seed);
      return;
    case 'drain':
      void app.drain(msg.timeoutMs).then(() => {
        send({ type: 'drained' });
        port.close();
      });
      return;
    case 'crash':
      // Test-only hook (SLUICE_TEST_HOOKS=1): an uncaught exception, as a bug would throw one.
      if (data.testHooks) setImmediate(() => { throw new Error('crash requested by test hook'); });
      return;
  }
});

try {
  await app.listen(data.config.listen.host, data.config.listen.port);
  send({ type: 'ready' });
} catch (err) {
  send({ type: 'fatal', message: (err as Error).message });
  app.close();
  port.close();
}
