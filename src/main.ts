// Control plane entry: configuration → shared table → workers; then supervision and shutdown.
// Nothing here is on the request path.

import type { ResolvedConfig } from './config/types.js';
import { createLogger } from './log.js';
import { startJwksService } from './edge/jwks-service.js';
import { SharedTable } from './state/table.js';
import { C, H, RETIRE_EVERY_MS, workerCell } from './state/layout.js';
import { Membership } from './state/membership.js';
import { servesHttp, Supervisor, type TestHooks } from './supervisor/supervisor.js';
import { hasNoUpstreams, startDemoPool, withDemoUpstreams, type DemoPool } from './demo/echo-backends.js';
import { ActiveChecker, healthOptions, poolHealthOptions } from './health/active-checker.js';
import { ConfigSource } from './reload/config-source.js';
import { Reloader, type ReloadResult } from './reload/reloader.js';
import { configureUpstreamTls } from './upstream/tls-options.js';
import { startAdminServer, type AdminServer } from './admin/server.js';
import { readVersion } from './cli.js';
import { DiscoveryCoordinator } from './discovery/coordinator.js';

/** At start, how long discovery sources get to report before Sluice starts with what is known. */
const DISCOVERY_START_MS = 3000;
/** How often slots of removed backends are checked for being drained (only while some are). */
const RECLAIM_EVERY_MS = 200;

export interface Running {
  supervisor: Supervisor;
  table: SharedTable;
  /** Active health checks; snapshot() is per-backend state for the admin API. */
  checker: ActiveChecker;
  /** What SIGHUP does: re-read SLUICE_ENV_FILE and SLUICE_CONFIG and apply them. */
  reload(): Promise<ReloadResult>;
  stop(): Promise<void>;
}

export async function start(config: ResolvedConfig, warnings: string[]): Promise<Running> {
  // Until the reloader exists, a SIGHUP (whose default action is to exit) is ignored, not fatal.
  let onHangup = (): void => {};
  process.on('SIGHUP', () => onHangup());
  // SLUICE_ENV_FILE: its values win over the environment, at start as on every SIGHUP.
  const source = new ConfigSource(process.env, config.envFile);
  if (source.path !== '') {
    const loaded = await source.load();
    if (!loaded.ok) {
      createLogger(config.logLevel, { role: 'control' }).fatal({ file: source.path, errors: loaded.errors }, 'start-up failed: invalid configuration');
      process.exitCode = 1;
      throw new Error(`invalid configuration in ${source.path}: ${loaded.errors.join('; ')}`);
    }
    config = { ...loaded.config, envFile: source.path };
    warnings = loaded.warnings;
  }
  // uWS reads this once, when its addon loads (in the first worker): set it before any worker starts.
  process.env.UWS_HTTP_MAX_HEADERS_SIZE = String(config.maxHeaderBytes);
  const log = createLogger(config.logLevel, { role: 'control' });
  // JWKS URLs of JWT routes: fetched here, once per process, for every worker (src/edge).
  startJwksService(log);
  for (const w of warnings) log.warn(w);

  // Discovery: sources start now, and membership starts with what they report (the checker that
  // priority groups consult is created below; until then nothing is known to be unhealthy).
  let checker: ActiveChecker | null = null;
  let discovery: DiscoveryCoordinator | null = null;
  const base = config;
  if (DiscoveryCoordinator.wanted(config)) {
    discovery = new DiscoveryCoordinator({ log, dnsServers: config.dnsServers, health: () => healthByBackend(checker) });
    discovery.configure(config);
    await discovery.initial(DISCOVERY_START_MS);
    config = discovery.compose(config);
  }

  let demo: DemoPool | null = null;
  if (hasNoUpstreams(config)) {
    demo = await startDemoPool();
    config = withDemoUpstreams(config, demo.upstreams);
    log.warn(
      { upstreams: demo.upstreams.map((u) => u.url) },
      'DEMO MODE: SLUICE_UPSTREAMS is not set, so Sluice is balancing over three built-in echo backends. ' +
        'Point it at real ones with SLUICE_UPSTREAMS=http://10.0.0.1:8080,http://10.0.0.2:8080',
    );
  }

  const table = new SharedTable();
  // Time stamps in the table are 32-bit and read relative to now: old ones must be retired before
  // they could alias (layout.ts, "Time"). Cheap (a scan of three columns), hourly.
  const retire = setInterval(() => table.retireStaleTimes(), RETIRE_EVERY_MS);
  retire.unref();
  const membership = new Membership(table);
  const backends = membership.assignPools(config.pools);
  // HTTP checks of https backends trust what the workers trust.
  configureUpstreamTls(config);
  checker = new ActiveChecker(table, healthOptions(config), log, poolHealthOptions(config.pools));
  checker.track(backends);
  logRouting(log, config, checker);
  // With checks on, a backend gets traffic only after a check passes: let the first round finish.
  const slowest = Math.max(config.healthTimeoutMs, ...config.pools.map((p) => p.healthTimeoutMs));
  await checker.settled(backends.map((b) => b.slot), slowest + 250);
  const hooks = process.env.SLUICE_TEST_HOOKS;
  const testHooks: TestHooks = hooks === '1' ? 'on' : hooks === 'linger' ? 'linger' : 'off';
  const supervisor = new Supervisor(config, table, backends, log, testHooks);
  let admin: AdminServer | null = null;
  let adminAt: string | undefined;
  try {
    await supervisor.start();
    if (config.adminListen !== null) {
      const started = await startAdminServer({ config, table, workers: supervisor, health: checker, log, version: readVersion(), registry: discovery?.registry });
      admin = started.server;
      adminAt = `${started.address.address}:${started.address.port}`;
    }
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'start-up failed');
    checker.stop();
    await discovery?.stop();
    clearInterval(retire);
    await supervisor.drain(0);
    await demo?.close();
    process.exitCode = 1;
    throw err;
  }
  log.info(
    {
      listen: config.listen === null ? 'off' : `${config.listen.host}:${config.listen.port}`,
      tls: config.tlsListen === null ? 'off' : `${config.tlsListen.host}:${config.tlsListen.port}`,
      admin: adminAt ?? 'off',
      workers: servesHttp(config) ? config.workers : 0,
      balancer: config.balancer,
      backends: backends.length,
      pools: config.pools.length,
      routes: config.routes.length,
      l4: config.listeners.map((l) => l.name),
    },
    'sluice is listening',
  );

  const reloader = new Reloader(
    source,
    { config, backends, demo: demo?.upstreams ?? null, base },
    { membership, workers: supervisor, checker, table, log },
  );
  if (discovery !== null) {
    reloader.useDiscovery(discovery);
    discovery.onChange(() => void reloader.membershipChanged());
  }
  // Slots of backends that left are reused once every worker has dropped them and they are drained.
  const reclaim = setInterval(() => {
    if (membership.leaving > 0) membership.reclaim(supervisor.appliedGeneration());
  }, RECLAIM_EVERY_MS);
  reclaim.unref();

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      const { drainTimeoutMs } = reloader.config;
      log.info({ drainTimeoutMs }, 'draining');
      await discovery?.stop();
      clearInterval(reclaim);
      checker?.stop();
      clearInterval(retire);
      await supervisor.drain(drainTimeoutMs);
      await admin?.close();
      await demo?.close();
      log.info('stopped');
    })());
  onHangup = () => {
    if (stopping === null) void reloader.reload();
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    log.info({ signal }, 'signal received');
    void stop().then(() => {
      // Every worker has exited (their uWS sockets are closed), so exiting now is safe.
      process.exit(0);
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  if (testHooks !== 'off') {
    // Test-only: SIGUSR2 makes worker 0 throw, to prove crash recovery.
    process.on('SIGUSR2', () => supervisor.crash(0));
    // Test-only: SIGWINCH makes L4 thread 0 throw (its connections die; the ledger is undone).
    process.on('SIGWINCH', () => supervisor.l4.crash(0));
    // Test-only: SIGUSR1 logs the shared counters, so tests can prove every slot was released.
    process.on('SIGUSR1', () => log.info(tableSnapshot(table, config.workers), 'table snapshot'));
  }
  return { supervisor, table, checker, reload: () => reloader.reload(), stop };
}

/** Each backend's health state by "pool\0url" (discovery's priority groups read it). */
function healthByBackend(checker: ActiveChecker | null): Map<string, string> {
  return new Map((checker?.snapshot() ?? []).map((h) => [`${h.pool}\0${h.url}`, h.state]));
}

/** One line per pool (balancer, backends, checks) and one for the route table, at start. */
function logRouting(log: ReturnType<typeof createLogger>, config: ResolvedConfig, checker: ActiveChecker): void {
  for (const p of config.pools) {
    const health = checker.optionsFor(p.name);
    log.info(
      { pool: p.name, balancer: p.balancer, upstreams: p.upstreams.map((u) => u.url), health: health.mode === 'http' ? `http ${health.path}` : health.mode },
      'pool',
    );
  }
  log.info({ routes: config.routes.length, file: config.configFile === '' ? null : config.configFile, names: config.routes.slice(0, 20).map((r) => r.name) }, 'routes');
}

/** In-flight and request counts per used slot (and per worker), for the test hook above. */
function tableSnapshot(table: SharedTable, workers: number): Record<string, unknown> {
  const slots = [];
  for (let slot = 0; slot < table.header(H.SLOTS_USED); slot++) {
    const perWorker: number[] = [];
    for (let w = 0; w <= workers; w++) perWorker.push(Atomics.load(table.words, workerCell(w, slot)));
    slots.push({
      slot,
      inFlight: table.get(C.IN_FLIGHT, slot),
      requests: table.get(C.REQUESTS, slot),
      openConns: table.get(C.OPEN_CONNS, slot),
      retries: table.get(C.RETRIES, slot),
      workers: perWorker,
    });
  }
  return { restarts: table.header(H.WORKER_RESTARTS), slots };
}
