// The L4 engine alone: one TcpProxy (dist/src/l4) per backend in a process of its own, nothing else
// in that process, so its CPU is the relay's and the connect path's and nothing more. For A/B work
// on src/l4 and for profiling (--node-flag=--perf-basic-prof with `perf record` as --wrap). The
// backends are bench/l4.js's (a download source and an echo), in a child process; the load is
// generated here. Per phase: MB/s and proxy CPU ms per MB, or connections/s and proxy CPU µs per
// connection; RSS of the proxy after the phase.
//
// Usage: npm run build && node bench/l4-engine.js [--phases one,many,rate] [--mib 1024]
//          [--conns 10000] [--read-buffer <bytes>] [--dist <dir of a built dist/src/>]
//          [--node-flag <flag>]... [--wrap "<command and args>"]
//   one / many: --mib MiB downloaded through 1 / 16 connections; rate: --conns connections, 32 at a
//   time, each a 4-byte echo. --dist measures another build (A/B). Under the shared bench lock.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connectionRate, download } from './lib/l4-load.js';

const here = fileURLToPath(import.meta.url);
const POLICY = { panicThresholdPercent: 50, leastRequestBias: 1, ewmaDecayMs: 10_000, ewmaDefaultRttMs: 10, slowStartMs: 0, maglevTableSize: 65537, seed: 1 };

if (process.argv[2] === '--proxy') await proxy(JSON.parse(process.argv[3]), process.argv[4], Number(process.argv[5]));
else await main();

// ---- the proxy process: one TcpProxy per backend port, CPU and RSS on request (a line on stdin) ----
async function proxy(ports, dist, readBuffer) {
  const load = (p) => import(new URL(p, dist).href);
  const { SharedTable } = await load('state/table.js');
  const { C, WEIGHT_SCALE } = await load('state/layout.js');
  const { createPolicy } = await load('balancer/registry.js');
  const { L4Pool } = await load('l4/pool.js');
  const { TcpProxy } = await load('l4/tcp-proxy.js');
  const table = new SharedTable();
  const out = {};
  let slot = 0;
  for (const [name, port] of Object.entries(ports)) {
    const backends = [{ slot, weight: 1, id: `127.0.0.1:${port}`, host: '127.0.0.1', port }];
    table.set(C.WEIGHT, slot++, WEIGHT_SCALE);
    // needsHash false: as the runtime builds a least-conn pool.
    const pool = new L4Pool({ name, backends, needsHash: false, policy: createPolicy('least-conn', table, backends, POLICY) });
    const p = new TcpProxy({ host: '127.0.0.1', port: 0, table, pool, ...(readBuffer >= 0 ? { readBufferBytes: readBuffer } : {}) });
    out[name] = (await p.start()).port;
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
  for await (const _ of createInterface({ input: process.stdin })) {
    const u = process.cpuUsage();
    process.stdout.write(`${JSON.stringify({ cpuMs: (u.user + u.system) / 1000, userMs: u.user / 1000, rssMib: process.memoryUsage().rss / 2 ** 20 })}\n`);
  }
  process.exit(0);
}

function parseArgs() {
  const args = process.argv.slice(2);
  const get = (flag, dflt) => {
    const i = args.indexOf(flag);
    return i < 0 ? dflt : args[i + 1];
  };
  const all = (flag) => args.flatMap((a, i) => (a === flag ? [args[i + 1]] : []));
  return {
    phases: get('--phases', 'one,many,rate').split(','),
    bytes: Number(get('--mib', 1024)) * 2 ** 20,
    conns: Number(get('--conns', 10_000)),
    readBuffer: Number(get('--read-buffer', -1)),
    dist: new URL(get('--dist', new URL('../dist/src/', import.meta.url).href), 'file:///').href.replace(/\/?$/, '/'),
    nodeFlags: all('--node-flag'),
    wrap: (get('--wrap', '') ?? '').split(' ').filter(Boolean),
  };
}

/** Lines of a child's stdout, one at a time. */
function lines(stream) {
  const queue = [];
  let waiting = null;
  createInterface({ input: stream }).on('line', (l) => (waiting ? (waiting(l), (waiting = null)) : queue.push(l)));
  return () => (queue.length > 0 ? Promise.resolve(queue.shift()) : new Promise((r) => (waiting = r)));
}

async function main() {
  const o = parseArgs();
  const be = spawn(process.execPath, [fileURLToPath(new URL('l4.js', import.meta.url)), '--backends'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const backendPorts = JSON.parse((await lines(be.stdout)()).replace(/^backends /, ''));
  const argv = [...o.nodeFlags, here, '--proxy', JSON.stringify(backendPorts), o.dist, String(o.readBuffer)];
  const px = o.wrap.length > 0 ? spawn(o.wrap[0], [...o.wrap.slice(1), process.execPath, ...argv], { stdio: ['pipe', 'pipe', 'inherit'] }) : spawn(process.execPath, argv, { stdio: ['pipe', 'pipe', 'inherit'] });
  const next = lines(px.stdout);
  const ports = JSON.parse(await next());
  const sample = async () => {
    px.stdin.write('\n');
    return JSON.parse(await next());
  };
  await connectionRate(ports.echo, 300, 16); // warm-up
  const rows = [];
  for (const phase of o.phases) {
    const a = await sample();
    const t0 = process.hrtime.bigint();
    const mb = phase === 'one' ? (await download(ports.dl, o.bytes, 1)).mb : phase === 'many' ? (await download(ports.dl, o.bytes, 16)).mb : 0;
    if (phase === 'rate') await connectionRate(ports.echo, o.conns, 32);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const b = await sample();
    const ms = b.cpuMs - a.cpuMs;
    rows.push(mb > 0 ? { phase, mbPerS: Math.round(mb / s), cpuMsPerMb: +(ms / mb).toFixed(3), rssMib: +b.rssMib.toFixed(1) } : { phase, connsPerS: Math.round(o.conns / s), cpuUsPerConn: +((ms * 1000) / o.conns).toFixed(1), userUsPerConn: +(((b.userMs - a.userMs) * 1000) / o.conns).toFixed(1), rssMib: +b.rssMib.toFixed(1) });
  }
  process.stdout.write(`${JSON.stringify({ dist: o.dist, readBuffer: o.readBuffer < 0 ? 'default' : o.readBuffer, rows })}\n`);
  px.stdin.end(); // the proxy exits when its stdin closes (also under a --wrap such as perf)
  be.kill();
  await new Promise((r) => px.once('exit', r));
}

