// Control plane entry: configuration → shared table → workers; then supervision and shutdown.
// Nothing here is on the request path.

import type { Config } from './config/types.js';
import { createLogger } from './log.js';
import { SharedTable } from './state/table.js';
import { C, H, workerCell } from './state/layout.js';
import { Membership } from './state/membership.js';
import { Supervisor } from './supervisor/supervisor.js';
import { startDemoPool, type DemoPool } from './demo/echo-backends.js';

export interface Running {
  supervisor: Supervisor;
  table: SharedTable;
  stop(): Promise<void>;
}

export async function start(config: Config, warnings: string[]): Promise<Running> {
  // uWS reads this once, when its addon loads (in the first worker): set it before any worker starts.
  process.env.UWS_HTTP_MAX_HEADERS_SIZE = String(config.maxHeaderBytes);
  const log = createLogger(config.logLevel, { role: 'control' });
  for (const w of warnings) log.warn(w);

  let upstreams = config.upstreams;
  let demo: DemoPool | null = null;
  if (upstreams.length === 0) {
    demo = await startDemoPool();
    upstreams = demo.upstreams;
    log.warn(
      { upstreams: upstreams.map((u) => u.url) },
      'DEMO MODE: SLUICE_UPSTREAMS is not set, so Sluice is balancing over three built-in echo backends. ' +
        'Point it at real ones with SLUICE_UPSTREAMS=http://10.0.0.1:8080,http://10.0.0.2:8080',
    );
  }

  const table = new SharedTable();
  const membership = new Membership(table);
  const backends = membership.assign(upstreams);
  const supervisor = new Supervisor(config, table, backends, log, process.env.SLUICE_TEST_HOOKS === '1');
  try {
    await supervisor.start();
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'start-up failed');
    await supervisor.drain(0);
    await demo?.close();
    process.exitCode = 1;
    throw err;
  }
  log.info(
    { listen: `${config.listen.host}:${config.listen.port}`, workers: config.workers, balancer: config.balancer, backends: upstreams.length },
    'sluice is listening',
  );

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      log.info({ drainTimeoutMs: config.drainTimeoutMs }, 'draining');
      await supervisor.drain(config.drainTimeoutMs);
      await demo?.close();
      log.info('stopped');
    })());
  const onSignal = (signal: NodeJS.Signals): void => {
    log.info({ signal }, 'signal received');
    void stop().then(() => {
      // Every worker has exited (their uWS sockets are closed), so exiting now is safe.
      process.exit(0);
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  if (process.env.SLUICE_TEST_HOOKS === '1') {
    // Test-only: SIGUSR2 makes worker 0 throw, to prove crash recovery.
    process.on('SIGUSR2', () => supervisor.crash(0));
    // Test-only: SIGUSR1 logs the shared counters, so tests can prove every slot was released.
    process.on('SIGUSR1', () => log.info(tableSnapshot(table, config.workers), 'table snapshot'));
  }
  return { supervisor, table, stop };
}

/** In-flight and request counts per used slot (and per worker), for the test hook above. */
function tableSnapshot(table: SharedTable, workers: number): Record<string, unknown> {
  const slots = [];
  for (let slot = 0; slot < table.header(H.SLOTS_USED); slot++) {
    const perWorker: number[] = [];
    for (let w = 0; w < workers; w++) perWorker.push(Atomics.load(table.words, workerCell(w, slot)));
    slots.push({
      slot,
      inFlight: table.get(C.IN_FLIGHT, slot),
      requests: table.get(C.REQUESTS, slot),
      openConns: table.get(C.OPEN_CONNS, slot),
      workers: perWorker,
    });
  }
  return { restarts: table.header(H.WORKER_RESTARTS), slots };
}
