// Where should an L4 listener run: on the main thread (beside the control plane) or on a dedicated
// worker thread? Measures both with the same TcpProxy (dist/src/l4), in one run, under 30 s:
//   - download throughput: 256 MiB through one connection (MB/s, and proxy-process CPU ms per MiB)
//   - connection rate: 3,000 connections, 32 at a time, each a 4-byte echo (conns/s, p50/p99 ms)
//   - the same connection rate while the main thread is busy 50 ms out of every 250 ms (what the
//     control plane does in bursts: metrics merges, status rendering, config reloads, discovery)
//   - the fixed cost of a worker thread: RSS and time until its listener is up.
// Backends and the load generator live in a child process, so the proxy process's threads have the
// measured work to themselves. Usage: npm run build && node bench/l4-threads.js [--json out.json]

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { writeFileSync } from 'node:fs';

const here = fileURLToPath(import.meta.url);
const dist = new URL('../dist/src/', import.meta.url);

async function startProxies(ports, buffer) {
  const { SharedTable } = await import(new URL('state/table.js', dist).href);
  const { C, WEIGHT_SCALE } = await import(new URL('state/layout.js', dist).href);
  const { createPolicy } = await import(new URL('balancer/registry.js', dist).href);
  const { L4Pool } = await import(new URL('l4/pool.js', dist).href);
  const { TcpProxy } = await import(new URL('l4/tcp-proxy.js', dist).href);
  const table = new SharedTable(buffer);
  const options = { panicThresholdPercent: 50, leastRequestBias: 1, ewmaDecayMs: 10_000, ewmaDefaultRttMs: 10, slowStartMs: 0, maglevTableSize: 65537, seed: 1 };
  const out = {};
  let slot = 0;
  const proxies = [];
  for (const [name, port] of Object.entries(ports)) {
    const backends = [{ slot, weight: 1, id: `127.0.0.1:${port}`, host: '127.0.0.1', port }];
    table.set(C.WEIGHT, slot++, WEIGHT_SCALE);
    const pool = new L4Pool({ name, backends, policy: createPolicy('least-conn', table, backends, options) });
    const p = new TcpProxy({ host: '127.0.0.1', port: 0, table, pool });
    out[name] = (await p.start()).port;
    proxies.push(p);
  }
  return { ports: out, stop: () => Promise.all(proxies.map((p) => p.drain(0))) };
}

// ---- worker thread: one TcpProxy per pool, ports posted back ----
if (!isMainThread) {
  const { ports, stop } = await startProxies(workerData.ports, workerData.buffer);
  parentPort.postMessage({ ports });
  parentPort.on('message', async (m) => {
    if (m === 'stop') {
      await stop();
      parentPort.postMessage('stopped');
    }
  });
} else if (process.argv[2] === '--driver') {
  await driver();
} else {
  await main();
}

// ---- child process: backends and load generator, JSON lines on stdin/stdout ----
async function driver() {
  const echo = net.createServer((s) => s.pipe(s).on('error', () => {}));
  const chunk = Buffer.alloc(1 << 20, 7);
  const source = net.createServer((s) => {
    s.on('error', () => {});
    let left = 256;
    const pump = () => {
      while (left > 0) {
        left--;
        if (!s.write(chunk)) return void s.once('drain', pump);
      }
      s.end();
    };
    pump();
  });
  await new Promise((r) => echo.listen(0, '127.0.0.1', r));
  await new Promise((r) => source.listen(0, '127.0.0.1', r));
  console.log(JSON.stringify({ echo: echo.address().port, source: source.address().port }));
  for await (const line of createInterface({ input: process.stdin })) {
    const cmd = JSON.parse(line);
    if (cmd.cmd === 'throughput') console.log(JSON.stringify(await download(cmd.port)));
    else if (cmd.cmd === 'rate') console.log(JSON.stringify(await rate(cmd.port, cmd.n, cmd.concurrency)));
    else process.exit(0);
  }
}

function download(port) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    let n = 0;
    const s = net.connect(port, '127.0.0.1');
    s.on('data', (d) => (n += d.length));
    s.on('end', () => {
      const s_ = Number(process.hrtime.bigint() - t0) / 1e9;
      s.end();
      resolve({ bytes: n, seconds: s_ });
    });
  });
}

async function rate(port, n, concurrency) {
  const lat = [];
  let started = 0;
  const one = () =>
    new Promise((resolve) => {
      const t0 = process.hrtime.bigint();
      const s = net.connect(port, '127.0.0.1', () => s.write('ping'));
      s.setNoDelay(true);
      s.once('data', () => {
        lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
        s.end();
      });
      s.on('close', resolve);
      s.on('error', () => {});
    });
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < n) {
        started++;
        await one();
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  return { conns: lat.length, seconds, p50: q(0.5), p99: q(0.99), max: lat[lat.length - 1] };
}

// ---- main: run each placement against the driver ----
async function main() {
  const child = spawn(process.execPath, [here, '--driver'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => JSON.parse((await lines.next()).value);
  const ask = async (cmd) => {
    child.stdin.write(JSON.stringify(cmd) + '\n');
    return next();
  };
  const backends = await next();
  const { SharedTable } = await import(new URL('state/table.js', dist).href);
  const results = {};

  for (const placement of ['main', 'worker']) {
    const table = new SharedTable();
    let ports;
    let stop;
    let spawnMs = 0;
    let rssDelta = 0;
    if (placement === 'main') {
      ({ ports, stop } = await startProxies(backends, table.buffer));
    } else {
      global.gc?.();
      const rss0 = process.memoryUsage().rss;
      const t0 = performance.now();
      const w = new Worker(here, { workerData: { ports: backends, buffer: table.buffer } });
      ports = await new Promise((r) => w.once('message', (m) => r(m.ports)));
      spawnMs = performance.now() - t0;
      rssDelta = process.memoryUsage().rss - rss0;
      stop = async () => {
        w.postMessage('stop');
        await new Promise((r) => w.once('message', r));
        await w.terminate();
      };
    }
    // Warm up (JIT, socket buffers).
    await ask({ cmd: 'rate', port: ports.echo, n: 300, concurrency: 16 });
    const cpu0 = process.cpuUsage();
    const tp = await ask({ cmd: 'throughput', port: ports.source });
    const cpu = process.cpuUsage(cpu0);
    const mib = tp.bytes / (1 << 20);
    const r = await ask({ cmd: 'rate', port: ports.echo, n: 3000, concurrency: 32 });
    // The control plane's bursts: 50 ms of synchronous work every 250 ms on the main thread.
    const stall = setInterval(() => {
      const end = performance.now() + 50;
      while (performance.now() < end);
    }, 250);
    const rs = await ask({ cmd: 'rate', port: ports.echo, n: 3000, concurrency: 32 });
    clearInterval(stall);
    await stop();
    results[placement] = {
      mbPerSec: mib / tp.seconds,
      cpuMsPerMiB: (cpu.user + cpu.system) / 1000 / mib,
      connsPerSec: r.conns / r.seconds,
      p50: r.p50,
      p99: r.p99,
      stalledConnsPerSec: rs.conns / rs.seconds,
      stalledP99: rs.p99,
      stalledMax: rs.max,
      workerSpawnMs: spawnMs,
      workerRssMiB: rssDelta / (1 << 20),
    };
  }
  child.stdin.write('{"cmd":"quit"}\n');

  const f = (x, d = 1) => x.toFixed(d);
  console.log('placement | MiB/s (1 conn) | CPU ms/MiB | conns/s | p50 ms | p99 ms | conns/s, main busy 20% | p99 ms, busy | max ms, busy | spawn ms | worker RSS MiB');
  for (const [k, v] of Object.entries(results)) {
    console.log(
      `${k.padEnd(9)} | ${f(v.mbPerSec, 0)} | ${f(v.cpuMsPerMiB, 2)} | ${f(v.connsPerSec, 0)} | ${f(v.p50, 2)} | ${f(v.p99, 2)} | ${f(v.stalledConnsPerSec, 0)} | ${f(v.stalledP99, 2)} | ${f(v.stalledMax, 1)} | ${f(v.workerSpawnMs, 0)} | ${f(v.workerRssMiB, 1)}`,
    );
  }
  const i = process.argv.indexOf('--json');
  if (i > 0) writeFileSync(process.argv[i + 1], JSON.stringify(results, null, 2));
}
