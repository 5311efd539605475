// Global rate limits through a real Redis (Debian's redis-server, started here on a free loopback
// port with no persistence): two Sluice processes share one bucket; with Redis killed mid-test a
// fail-open limit falls back to the local one (and says so in its log), a fail-closed one answers 503.

import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { ensureBuilt, freePort } from '../helpers/sluice.js';
import { startBackend } from '../helpers/backends.js';
import { blast, echoJson, request, startWithConfig, until } from './helpers.js';

async function startRedis(t: { teardown(fn: () => unknown): void }, port?: number): Promise<{ port: number; proc: ChildProcess }> {
  port ??= await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-redis-'));
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
  });
  await until(
    () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect(port!, '127.0.0.1', () => {
          s.write('PING\r\n');
        });
        s.once('data', (d) => {
          s.destroy();
          resolve(d.toString().startsWith('+PONG'));
        });
        s.once('error', () => resolve(false));
      }),
    'redis-server answers PING',
  );
  return { port, proc };
}

/** `n` requests with the limit's key header, over 8 connections. */
function statuses(port: number, path: string, n: number, key: string): Promise<number[]> {
  return blast(port, path, n, 8, { 'x-k': key });
}

t.before(ensureBuilt);

t.test('two Sluice processes share one bucket; Redis killed: fail open falls back, fail closed answers 503', async (t) => {
  const redis = await startRedis(t);
  const backend = await startBackend(t, echoJson);
  const config = `pools: { api: { upstreams: ["${backend.url}"] } }
routes:
  - match: { path_prefix: /shared/ }
    pool: api
    rate_limit: [{ key: "header:x-k", rate: 1/m, burst: 30, global: "redis://127.0.0.1:${redis.port}" }]
  - match: { path_prefix: /strict/ }
    pool: api
    rate_limit: [{ key: route, rate: 1000/s, global: "redis://127.0.0.1:${redis.port}", fail: closed }]
`;
  const a = await startWithConfig(t, config, { workers: 2 });
  const b = await startWithConfig(t, config, { workers: 2 });
  // Both hosts connected before counting (a host not yet connected would fall back to its own limit).
  await until(async () => (await request(a.port, 'GET', '/strict/x')).status === 200 && (await request(b.port, 'GET', '/strict/x')).status === 200, 'both hosts reach Redis');

  const [sa, sb] = await Promise.all([statuses(a.port, '/shared/x', 100, 'alpha'), statuses(b.port, '/shared/x', 100, 'alpha')]);
  const admitted = [...sa, ...sb].filter((s) => s === 200).length;
  // Leases parked in the 4 workers (at most 2 each: lease size 3, one spent) are the only slack.
  t.ok(admitted <= 30 && admitted >= 30 - 4 * 2, `admitted ${admitted} of a shared burst of 30 (each host alone would admit 30)`);
  t.ok(sa.includes(429) && sb.includes(429), 'both hosts refuse once the shared bucket is empty');

  redis.proc.kill('SIGKILL');
  // A key Redis already refused stays refused for its Retry-After (that answer was global); a key
  // first seen while Redis is down is judged by the local limit.
  await until(async () => (await request(a.port, 'GET', '/shared/x', { 'x-k': 'beta' })).status === 200, 'fail open: the local limit admits');
  await a.waitForLog((l) => /Redis unreachable, using the local limit/.test(l.msg));
  // fail: closed: once the requests this worker leased before the kill are spent or expired (1 s).
  let strict = await request(a.port, 'GET', '/strict/x');
  await until(async () => (strict = await request(a.port, 'GET', '/strict/x')).status !== 200, 'leased requests run out');
  t.equal(strict.status, 503, 'fail: closed');
  t.equal(strict.headers['x-sluice-error'], 'rate-limit-unavailable');
  // The local fallback is itself a limit: the same 30-burst, now per host.
  const local = await statuses(a.port, '/shared/x', 60, 'beta');
  t.ok(local.filter((s) => s === 200).length <= 30, 'the fallback still limits');
  t.ok(local.includes(429));

  // Redis back (empty, on the same port): the hosts reconnect by themselves and use it again.
  const mark = a.logs().length;
  await startRedis(t, redis.port);
  await a.waitForLog((l) => l.msg === 'rate limit: Redis reachable again', 15_000, mark);
  await until(async () => (await request(a.port, 'GET', '/strict/x')).status === 200, 'fail: closed admits again');
});
