// Load generation for benchmark scenarios: wrk when it is on PATH (a C load generator, far cheaper
// per request than anything in Node), else autocannon with worker threads. Both return the same
// shape: { generator, rps, p50Ms, p99Ms, requests, durationS, errors, non2xx, detail }.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { trackChild, which } from './procs.js';

const require = createRequire(import.meta.url);

/**
 * Pick a generator. `prefer` is 'wrk', 'autocannon' or undefined (wrk if installed).
 * `threads` defaults to 1 for wrk (the numbers in ../shared/bench/README.md use -t1) and 2 for
 * autocannon (one Node thread saturates near 65k req/s on this kind of machine).
 * Returns { name, threads, label }.
 */
export function chooseGenerator({ prefer, threads } = {}) {
  const wrk = which('wrk');
  if (prefer === 'wrk' && !wrk) throw new Error('wrk requested but not on PATH');
  if (prefer !== 'autocannon' && wrk) {
    const t = threads ?? 1;
    return { name: 'wrk', threads: t, label: `wrk -t${t}` };
  }
  const t = threads ?? 2;
  let version = '';
  try { version = ` ${require('autocannon/package.json').version}`; } catch { /* not installed */ }
  return { name: 'autocannon', threads: t, label: `autocannon${version} workers=${t}` };
}

/**
 * Drive `url` for `durationS` seconds with `connections` keep-alive connections.
 * `generator` is what chooseGenerator returned.
 */
export function runLoad(generator, { url, connections = 100, durationS = 6, headers }) {
  if (generator.name === 'wrk') return runWrk({ url, connections, durationS, threads: generator.threads, headers });
  return runAutocannon({ url, connections, durationS, workers: generator.threads, headers });
}

/**
 * A short unrecorded run so JITs, connection pools and CPU frequency settle before measuring.
 * autocannon warms up in-process: its worker threads take about a second to start, which would
 * cost more than the warm-up itself.
 */
export async function warmUp(generator, { url, connections = 100, durationS = 1, headers }) {
  if (durationS <= 0) return null;
  if (generator.name === 'autocannon') return runAutocannon({ url, connections, durationS, workers: 1, headers });
  return runLoad(generator, { url, connections, durationS, headers });
}

// ---------------------------------------------------------------- wrk

const WRK_UNITS = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "612.00us" / "1.30ms" / "2.01s" -> milliseconds. */
export function wrkTimeToMs(text) {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (!m) return NaN;
  return Number(m[1]) * WRK_UNITS[m[2]];
}

/** Parse the text wrk prints with --latency. */
export function parseWrk(text) {
  const num = (re) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : 0;
  };
  const pct = (p) => {
    const m = new RegExp(`^\\s*${p}%\\s+(\\S+)\\s*$`, 'm').exec(text);
    return m ? wrkTimeToMs(m[1]) : NaN;
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = socket
    ? { connect: +socket[1], read: +socket[2], write: +socket[3], timeout: +socket[4] }
    : { connect: 0, read: 0, write: 0, timeout: 0 };
  const done = /(\d+) requests in ([\d.]+)(us|ms|s|m|h)/.exec(text);
  const rpsMatch = /Requests\/sec:\s+([\d.]+)/.exec(text);
  if (!rpsMatch) throw new Error(`could not parse wrk output: ${text.trim().split('\n').slice(-2).join(' | ')}`);
  return {
    rps: Number(rpsMatch[1]),
    p50Ms: pct(50),
    p99Ms: pct(99),
    requests: done ? Number(done[1]) : 0,
    durationS: done ? wrkTimeToMs(`${done[2]}${done[3]}`) / 1000 : 0,
    non2xx: num(/Non-2xx or 3xx responses:\s+(\d+)/),
    errors: socketErrors.connect + socketErrors.read + socketErrors.write + socketErrors.timeout,
    detail: { socketErrors },
  };
}

/**
 * `headers` ({ name: value }) are sent on every request. wrk replaces its own Host header only
 * with a header spelled exactly `Host` (any other spelling would send two, which proxies refuse).
 */
export function runWrk({ url, connections, durationS, threads = 1, headers = {} }) {
  const extra = Object.entries(headers).flatMap(([name, value]) => ['-H', `${name}: ${value}`]);
  const args = [`-t${threads}`, `-c${connections}`, `-d${durationS}s`, '--latency', ...extra, url];
  return new Promise((resolve, reject) => {
    const child = trackChild(spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { out += c; });
    // wrk stops on its own; this only guards against a hang.
    const guard = setTimeout(() => child.kill('SIGKILL'), (durationS + 15) * 1000);
    child.on('error', (err) => { clearTimeout(guard); reject(err); });
    child.on('close', (code) => {
      clearTimeout(guard);
      try {
        resolve({ generator: 'wrk', ...parseWrk(out), raw: out });
      } catch (err) {
        reject(code ? new Error(`wrk exited with ${code}: ${out.trim()}`) : err);
      }
    });
  });
}

// ---------------------------------------------------------------- autocannon

export async function runAutocannon({ url, connections, durationS, workers = 2, headers }) {
  const autocannon = require('autocannon');
  const opts = { url, connections, duration: durationS };
  if (headers) opts.headers = headers;
  if (workers > 1) opts.workers = workers;
  const result = await new Promise((resolve, reject) => {
    autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
  });
  const durationSeconds = result.duration || durationS;
  const requests = result.requests?.total ?? 0;
  return {
    generator: 'autocannon',
    rps: requests / durationSeconds,
    p50Ms: result.latency?.p50 ?? NaN,
    p99Ms: result.latency?.p99 ?? NaN,
    requests,
    durationS: durationSeconds,
    non2xx: result.non2xx ?? 0,
    // autocannon already counts timeouts inside errors.
    errors: result.errors ?? 0,
    detail: { errors: result.errors, timeouts: result.timeouts, resets: result.resets, statusCodeStats: result.statusCodeStats },
  };
}
