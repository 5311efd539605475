// Proxy worker thread: builds its view of the shared table, its pools and policy, listens on the
// shared port, and follows the control plane's messages (new membership, drain).

import { parentPort, workerData } from 'node:worker_threads';
import type { Config, ResolvedConfig } from '../src/config/types.js';
import { withoutFile } from '../src/config/load.js';
import { createLogger } from '../src/log.js';
import { SharedTable } from '../src/state/table.js';
import { C } from '../src/state/layout.js';
import { ProxyContext, type Backend } from '../src/http/context.js';
import { ProxyApp } from '../src/http/proxy-app.js';
import { tlsListener } from '../src/tls/ssl-app.js';
import { configureUpstreamTls } from '../src/upstream/tls-options.js';
import type { ToWorker, FromWorker } from '../src/supervisor/messages.js';
import { LatencyRecorder } from '../src/metrics/latency.js';
import { accessLog } from '../src/http/access-log.js';
import { wsSettings } from '../src/ws/hub.js';

export interface ProxyWorkerData {
  index: number;
  buffer: SharedArrayBuffer;
  config: ResolvedConfig;
  backends: Backend[];
  seed: number;
  testHooks: boolean;
  /**
   * Test hook: a crash also leaves a timer running that nothing clears (a stand-in for a leaked
   * handle), so the thread cannot end by itself and the supervisor has to terminate it.
   */
  lingerOnCrash: boolean;
  /** Warm spare: load everything, but listen only when the supervisor sends 'activate'. */
  standby: boolean;
}

const data = workerData as ProxyWorkerData;
const port = parentPort!;
const log = createLogger(data.config.logLevel, { worker: data.index });
const send = (msg: FromWorker): void => port.postMessage(msg);

const table = new SharedTable(data.buffer, data.index);
/** This worker's latency histograms per backend; the request path records, admin scrapes read. */
const latency = new LatencyRecorder();
configureUpstreamTls(data.config);
/** The configuration running now, with its pools and routes (a plain Config is the one-pool case). */
let current = resolved(data.config);
/**
 * Each member slot's generation (SLOT_GEN) when this worker last saw it. Discovery reuses the slots
 * of drained backends: a slot whose generation moved on belongs to another backend now, whose
 * latency must start from nothing.
 */
const slotGens = new Map<number, number>();
function noteSlots(backends: readonly Backend[]): void {
  for (const b of backends) {
    const gen = table.get(C.SLOT_GEN, b.slot);
    const seen = slotGens.get(b.slot);
    if (seen !== undefined && seen !== gen) latency.reset(b.slot);
    slotGens.set(b.slot, gen);
  }
}
noteSlots(data.backends);
const ctx = new ProxyContext(current, table, data.backends, log, data.seed, latency);
let accessRate = data.config.accessLog;
ctx.accessLog = accessLog(accessRate, data.index);
const app = new ProxyApp(ctx, tlsListener(data.config), wsSettings(data.config));

// An uncaught exception would end this thread with uWS's sockets still open, and Node aborts the
// whole process ("uv_loop_close() while having open handles") when a thread's loop closes that
// way; worker.terminate() does the same while a uWS socket is open. So: close every client socket
// and destroy every upstream one, busy ones included (a backend holding a keep-alive connection
// open must not keep this thread alive), tell the supervisor it is safe to terminate us, and let
// the thread end by itself. The supervisor sees the exit (code 1), releases the thread's slots in
// the shared table and replaces it; if the thread has not ended within its bound, it terminates
// it. The close waits a turn: the exception may have been thrown from inside a uWS callback.
let crashed = false;
process.on('uncaughtException', (err) => {
  log.fatal({ err: err.message, stack: err.stack }, 'worker crashed');
  process.exitCode = 1;
  if (crashed) return;
  crashed = true;
  send({ type: 'crashing' });
  setImmediate(() => {
    try {
      app.abort();
      send({ type: 'closed' });
    } finally {
      port.close();
    }
  });
});

port.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'backends':
      noteSlots(msg.backends);
      ctx.setConfig(current, msg.backends, msg.seed);
      app.ws.retire(new Set(msg.backends.map((b) => b.slot)), current.drainTimeoutMs);
      send({ type: 'applied', generation: msg.generation });
      return;
    case 'config':
      noteSlots(msg.backends);
      reconfigure(msg.config, msg.backends, msg.seed);
      send({ type: 'applied', generation: msg.generation });
      return;
    case 'drain':
      void app.drain(msg.timeoutMs).then(() => {
        send({ type: 'drained' });
        port.close();
      });
      return;
    case 'latency':
      send({ type: 'latency', id: msg.id, snapshot: latency.snapshot() });
      return;
    case 'activate':
      void listen();
      return;
    case 'crash':
      // Test-only hook (SLUICE_TEST_HOOKS=1): an uncaught exception, as a bug would throw one.
      if (data.testHooks) {
        setImmediate(() => {
          if (data.lingerOnCrash) setInterval(() => {}, 60_000);
          throw new Error('crash requested by test hook');
        });
      }
      return;
  }
});

/**
 * Reload (SIGHUP): new settings and membership in one step. The listen address and worker count
 * never change here (the control plane keeps their running values).
 */
function reconfigure(plain: Config | ResolvedConfig, backends: Backend[], seed: number): void {
  const config = resolved(plain);
  current = config;
  log.level = config.logLevel;
  try {
    configureUpstreamTls(config);
  } catch (err) {
    log.error({ err: (err as Error).message }, 'reload: upstream TLS settings not applied');
  }
  ctx.setConfig(config, backends, seed);
  // WebSockets to backends that left get 1001 after the drain timeout, as on SIGTERM.
  app.ws.retire(new Set(backends.map((b) => b.slot)), config.drainTimeoutMs);
  if (config.accessLog !== accessRate) {
    accessRate = config.accessLog;
    ctx.accessLog = accessLog(accessRate, data.index);
  }
}

/** Pools and routes of `config`: a Config without them is SLUICE_UPSTREAMS behind one catch-all route. */
function resolved(config: Config | ResolvedConfig): ResolvedConfig {
  return 'routes' in config && 'pools' in config ? config : withoutFile(config);
}

async function listen(): Promise<void> {
  try {
    await app.listen(data.config.listen);
    send({ type: 'ready' });
  } catch (err) {
    send({ type: 'fatal', message: (err as Error).message });
    app.close();
    port.close();
  }
}

if (data.standby) send({ type: 'standby' });
else await listen();
