// Starters for everything a scenario can put load on: Sluice itself and the peers (nginx, HAProxy,
// node http-proxy). Each starter resolves { handle, url, info? } once GET / through the target
// answers 200, or throws: a SkipError when the peer is not installed, any other Error when it
// failed to start. Stop what they return with stopProcess() from procs.js.
import fs from 'node:fs';
import path from 'node:path';
import { renderTemplate, startProcess, stopProcess, waitForHttp, which } from './procs.js';

export class SkipError extends Error {}

/** Where peer config templates live: ../shared/bench next to the repo, else bench/peers. */
export function findTemplate(repoRoot, fileName) {
  const shared = path.resolve(repoRoot, '..', 'shared', 'bench', fileName);
  if (fs.existsSync(shared)) return shared;
  return path.join(repoRoot, 'bench', 'peers', fileName);
}

function hostPort(url) {
  const u = new URL(url);
  return `${u.hostname}:${u.port || (u.protocol === 'https:' ? 443 : 80)}`;
}

/** Wait for GET / == `status` (200); on failure stop the child before rethrowing. */
async function ready(handle, url, timeoutMs, status = 200) {
  try {
    const res = await waitForHttp(handle, `${url}/`, { timeoutMs, status });
    return res;
  } catch (err) {
    await stopProcess(handle, { signal: 'SIGKILL', timeoutMs: 2000 });
    throw err;
  }
}

/**
 * Sluice from dist/ (run `npm run build` first). `env` adds or overrides SLUICE_* variables.
 * `stdout` (a file path such as '/dev/null') sends Sluice's stdout, where its logs and access log go,
 * to that file instead of through the harness.
 */
/** `readyStatus`: what GET / answers once Sluice is up (404 when no route of its config file matches /). */
export async function startSluice({ repoRoot, port, upstreams, workers, env = {}, stdout, timeoutMs = 10_000, readyStatus = 200 }) {
  const cli = path.join(repoRoot, 'dist', 'src', 'cli.js');
  if (!fs.existsSync(cli)) throw new Error('dist/src/cli.js not found (run npm run build)');
  const handle = startProcess(`sluice:${workers}`, process.execPath, [cli], {
    cwd: repoRoot,
    stdout,
    env: {
      SLUICE_LISTEN: `127.0.0.1:${port}`,
      SLUICE_UPSTREAMS: upstreams.join(','),
      SLUICE_WORKERS: String(workers),
      SLUICE_LOG_LEVEL: 'warn',
      ...env,
    },
  });
  const url = `http://127.0.0.1:${port}`;
  const res = await ready(handle, url, timeoutMs, readyStatus);
  return { handle, url, firstResponse: res };
}

/**
 * nginx in the foreground (daemon off) with `workers` worker processes.
 * Scenarios that need another config pass `template` (a file name: ../shared/bench, then
 * bench/peers), `serverOptions` (appended to every upstream "server host:port" line, such as
 * "max_fails=1 fail_timeout=5s"), `values` (extra @PLACEHOLDER@ values) and `scheme` ('https' when
 * the template listens with ssl; readiness is then checked over TLS).
 */
export async function startNginx({
  repoRoot, scratchDir, port, upstreams, workers, template: templateName = 'nginx.conf.template',
  serverOptions = '', values = {}, scheme = 'http', timeoutMs = 10_000,
}) {
  const bin = which('nginx');
  if (!bin) throw new SkipError('not installed');
  const dir = fs.mkdtempSync(path.join(scratchDir, `nginx-${workers}-`));
  const template = findTemplate(repoRoot, templateName);
  const opts = serverOptions ? ` ${serverOptions}` : '';
  const conf = renderTemplate(fs.readFileSync(template, 'utf8'), {
    WORKERS: workers,
    DIR: dir,
    LISTEN_PORT: port,
    BACKENDS: upstreams.map((u) => `server ${hostPort(u)}${opts};`).join(' '),
    ...values,
  });
  const confPath = path.join(dir, 'nginx.conf');
  fs.writeFileSync(confPath, conf);
  // -e keeps nginx from touching /var/log/nginx before it has read the config.
  const handle = startProcess(`nginx:${workers}`, bin, [
    '-p', dir, '-c', confPath, '-e', path.join(dir, 'nginx.error.log'), '-g', 'daemon off;',
  ]);
  const url = `${scheme}://127.0.0.1:${port}`;
  const res = await ready(handle, url, timeoutMs);
  return { handle, url, firstResponse: res, info: { template } };
}

/**
 * HAProxy in the foreground (-db) with `threads` threads. `template`, `serverOptions` and `values`
 * as for startNginx (server lines are "server sN host:port maxconn 1000" + serverOptions).
 */
export async function startHaproxy({
  repoRoot, scratchDir, port, upstreams, threads, template: templateName = 'haproxy.cfg.template',
  serverOptions = '', values = {}, timeoutMs = 10_000,
}) {
  const bin = which('haproxy');
  if (!bin) throw new SkipError('not installed');
  const dir = fs.mkdtempSync(path.join(scratchDir, `haproxy-${threads}-`));
  const template = findTemplate(repoRoot, templateName);
  const opts = serverOptions ? ` ${serverOptions}` : '';
  const cfg = renderTemplate(fs.readFileSync(template, 'utf8'), {
    THREADS: threads,
    DIR: dir,
    LISTEN_PORT: port,
    BACKENDS: upstreams.map((u, i) => `server s${i + 1} ${hostPort(u)} maxconn 1000${opts}`).join('\n  '),
    ...values,
  });
  const cfgPath = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(cfgPath, cfg);
  const handle = startProcess(`haproxy:${threads}`, bin, ['-db', '-f', cfgPath]);
  const url = `http://127.0.0.1:${port}`;
  const res = await ready(handle, url, timeoutMs);
  return { handle, url, firstResponse: res, info: { template } };
}

/** The http-proxy package in one Node process (bench/peers/node-http-proxy.js). */
export async function startNodeHttpProxy({ repoRoot, port, upstreams, timeoutMs = 10_000 }) {
  try {
    // Resolve from the repo so a missing devDependency reads as "not installed".
    const { createRequire } = await import('node:module');
    createRequire(path.join(repoRoot, 'package.json')).resolve('http-proxy');
  } catch {
    throw new SkipError('not installed (npm i -D http-proxy)');
  }
  const script = path.join(repoRoot, 'bench', 'peers', 'node-http-proxy.js');
  const handle = startProcess('node-http-proxy', process.execPath, [script, String(port), ...upstreams]);
  const url = `http://127.0.0.1:${port}`;
  const res = await ready(handle, url, timeoutMs);
  return { handle, url, firstResponse: res };
}
