// L4 side by side: Sluice (SLUICE_TCP_LISTEN, one L4 thread) against HAProxy `mode tcp` and nginx
// `stream` (one thread / worker each, so "per core" compares like with like), on the same two
// backends, with the backends direct as the ceiling. In one run, per target:
//   - throughput: 1 GiB downloaded through 1 connection, and 1 GiB through 16 connections at once
//     (MB/s; and MB per CPU-second of the target's whole process group, i.e. CPU per MB)
//   - connection rate: 20,000 new connections, 32 at a time, each a 4-byte echo then close
//     (conns/s; and conns per CPU-second)
//   - RSS over 10,000 connections opened and closed (100 at a time): before, peak, after
// Targets: docs/l4.md names the goals: >= 0.8x HAProxy's MB/s and conns/s per core, RSS flat.
//
// The backends run in a child process (`node bench/l4.js --backends`); the load generator runs
// here, one Node thread, the same for every target. Peers are optional (`apt-get install -y nginx
// libnginx-mod-stream haproxy`); a missing one is a "skipped" row.
//
// Usage: npm run bench:l4 [-- --quick] [--only sluice,haproxy,nginx] [--json out.json]
//   --quick   64 MiB transfers, 1,000 connections, 1,000 for RSS
// Every target is warmed up first with connections, a download, and connections again (main()).
//   --smoke   8 MiB, 100, 100: checks the harness and every target start, in a few seconds

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectionRate, download } from './lib/l4-load.js';
import { freePort, groupCpu, renderTemplate, startProcess, stopProcess, waitForOutput, which } from './lib/procs.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHUNK = Buffer.alloc(1 << 20, 0x5a);

if (process.argv[2] === '--backends') await backends();
else await main();

// ---- child process: a download source and an echo server ----
async function backends() {
  // Download: the client sends an 8-byte big-endian length; that many bytes come back, then FIN.
  const dl = net.createServer((s) => {
    s.setNoDelay(true);
    s.once('data', (d) => {
      let left = Number(d.readBigUInt64BE(0));
      const pump = () => {
        while (left > 0) {
          const n = Math.min(left, CHUNK.length);
          left -= n;
          if (!s.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return s.once('drain', pump);
        }
        s.end();
      };
      pump();
    });
    s.on('error', () => {});
  });
  const echo = net.createServer({ allowHalfOpen: false }, (s) => {
    s.setNoDelay(true);
    s.on('data', (d) => s.write(d));
    s.on('error', () => {});
  });
  dl.listen({ host: '127.0.0.1', port: 0, backlog: 4096 });
  echo.listen({ host: '127.0.0.1', port: 0, backlog: 4096 });
  await Promise.all([dl, echo].map((s) => new Promise((r) => s.once('listening', r))));
  process.stdout.write(`backends ${JSON.stringify({ dl: dl.address().port, echo: echo.address().port })}\n`);
}

function parseArgs() {
  const args = process.argv.slice(2);
  const get = (flag) => {
    const i = args.indexOf(flag);
    return i < 0 ? undefined : args[i + 1];
  };
  const quick = args.includes('--quick');
  const smoke = args.includes('--smoke');
  return {
    quick,
    smoke,
    only: (get('--only') ?? 'sluice,haproxy,nginx').split(',').map((s) => s.trim()),
    json: get('--json'),
    bytes: smoke ? 8 << 20 : quick ? 64 << 20 : 1 << 30,
    warmBytes: smoke ? 1 << 20 : quick ? 16 << 20 : 64 << 20,
    // 20,000: CPU time is read in 10 ms ticks, and 10,000 connections were ~50 ticks (±2% each side).
    conns: smoke ? 100 : quick ? 1000 : 20_000,
    rssConns: smoke ? 100 : quick ? 1000 : 10_000,
  };
}

async function main() {
  const opts = parseArgs();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-l4-'));
  const be = startProcess('backends', process.execPath, [fileURLToPath(import.meta.url), '--backends']);
  const ports = JSON.parse((await waitForOutput(be, /backends (\{.*\})/))[1]);
  const rows = [];
  const targets = [{ name: 'direct', start: async () => ({ dl: ports.dl, echo: ports.echo, handle: null }) }];
  if (opts.only.includes('sluice')) targets.push({ name: 'sluice', start: () => startSluice(dir, ports) });
  if (opts.only.includes('haproxy')) targets.push({ name: 'haproxy', start: () => startHaproxy(dir, ports) });
  if (opts.only.includes('nginx')) targets.push({ name: 'nginx', start: () => startNginx(dir, ports) });
  for (const target of targets) {
    process.stderr.write(`l4 bench: ${target.name}\n`);
    let t;
    try {
      t = await target.start();
    } catch (err) {
      rows.push({ target: target.name, error: err.message });
      continue;
    }
    if (t === null) {
      rows.push({ target: target.name, error: 'skipped: not installed' });
      continue;
    }
    try {
      await waitForPort(t.dl);
      await waitForPort(t.echo);
      // Warm-up, the same for every target: a long-running balancer is measured, not its first
      // seconds, and such a balancer has seen both kinds of traffic measured below. So:
      // connections, a download through 1 and through 16 connections, connections again.
      // - 2,000 connections, because V8 is still optimising Sluice's connect path after a few
      //   hundred (in bench/l4-engine.js, after its 300, a second 10,000-connection phase cost
      //   5-11% less CPU per connection than the first).
      // - The downloads, because they reach relay code short connections never do, and V8 then
      //   recompiles what it had optimised without it. With a warm-up of connections alone, the
      //   connection phase below (which follows the measured downloads) spent 20-23 ms of its
      //   ~500 compiling 9-10 functions (--trace-opt); after this warm-up, 2 (4 ms).
      const warmConns = opts.smoke ? 20 : opts.quick ? 500 : 2000;
      await connectionRate(t.echo, warmConns, 16);
      await download(t.dl, opts.warmBytes, 1);
      await download(t.dl, opts.warmBytes, 16);
      await connectionRate(t.echo, warmConns, 32);
      const pgid = t.handle?.pid ?? null;
      const one = await measured(pgid, () => download(t.dl, opts.bytes, 1));
      const many = await measured(pgid, () => download(t.dl, opts.bytes, 16));
      const rate = await measured(pgid, () => connectionRate(t.echo, opts.conns, 32));
      const rss = pgid === null ? null : await rssOver(pgid, t.echo, opts.rssConns);
      rows.push({
        target: target.name,
        mbps1: one.result.mbps,
        mbps16: many.result.mbps,
        mbPerCpuS: perCpu(one.result.mb + many.result.mb, one.cpuS + many.cpuS),
        cpuMsPerMb: one.cpuS === null ? null : ((one.cpuS + many.cpuS) * 1000) / (one.result.mb + many.result.mb),
        connsPerS: rate.result.connsPerS,
        connsPerCpuS: perCpu(rate.result.conns, rate.cpuS),
        rss,
      });
    } catch (err) {
      const gist = t.handle?.output().trim().split('\n').slice(-2).join(' ') ?? '';
      rows.push({ target: target.name, error: gist ? `${err.message} (${gist.slice(0, 160)})` : err.message });
    } finally {
      if (t.handle) await stopProcess(t.handle);
    }
  }
  await stopProcess(be);
  fs.rmSync(dir, { recursive: true, force: true });
  report(rows, opts);
}

function perCpu(amount, cpuS) {
  return cpuS === null || cpuS <= 0 ? null : amount / cpuS;
}

/** Run `fn`, and the CPU seconds the target's process group used meanwhile (null: direct). */
async function measured(pgid, fn) {
  const before = pgid === null ? null : groupCpu(pgid);
  const result = await fn();
  const after = pgid === null ? null : groupCpu(pgid);
  const cpuS = before === null || after === null ? null : after.userS + after.sysS - before.userS - before.sysS;
  return { result, cpuS };
}

async function startSluice(dir, ports) {
  const [dl, echo] = await Promise.all([freePort(), freePort()]);
  const config = path.join(dir, 'sluice-l4.yaml');
  fs.writeFileSync(
    config,
    [
      'pools:',
      `  dl:   { upstreams: ["tcp://127.0.0.1:${ports.dl}"] }`,
      `  echo: { upstreams: ["tcp://127.0.0.1:${ports.echo}"] }`,
      'listeners:',
      `  - { tcp: "127.0.0.1:${dl}", pool: dl }`,
      `  - { tcp: "127.0.0.1:${echo}", pool: echo }`,
      '',
    ].join('\n'),
  );
  const cli = path.join(here, '..', 'dist', 'src', 'cli.js');
  if (!fs.existsSync(cli)) throw new Error('failed: dist/src/cli.js missing (npm run build)');
  const handle = startProcess('sluice', process.execPath, [cli], {
    env: {
      // L4 only, as the peers' configs are (tcp frontends, stream servers): no HTTP listener, so
      // no HTTP worker.
      SLUICE_LISTEN: 'off',
      SLUICE_L4_THREADS: '1',
      SLUICE_CONFIG: config,
      SLUICE_ADMIN_LISTEN: 'off',
      SLUICE_HEALTH_CHECK: 'off',
      SLUICE_LOG_LEVEL: 'info',
    },
    stdout: '/dev/null',
  });
  return { dl, echo, handle };
}

async function startHaproxy(dir, ports) {
  const bin = which('haproxy');
  if (!bin) return null;
  const [dl, echo] = await Promise.all([freePort(), freePort()]);
  const cfg = path.join(dir, 'haproxy-tcp.cfg');
  const template = fs.readFileSync(path.join(here, 'peers', 'haproxy-tcp.cfg.template'), 'utf8');
  fs.writeFileSync(cfg, renderTemplate(template, { THREADS: 1, DIR: dir, DL_PORT: dl, ECHO_PORT: echo, DL_BACKEND: `127.0.0.1:${ports.dl}`, ECHO_BACKEND: `127.0.0.1:${ports.echo}` }));
  return { dl, echo, handle: startProcess('haproxy', bin, ['-db', '-f', cfg]) };
}

async function startNginx(dir, ports) {
  const bin = which('nginx');
  const module = ['/usr/lib/nginx/modules/ngx_stream_module.so', '/usr/share/nginx/modules/ngx_stream_module.so'].find((p) => fs.existsSync(p));
  if (!bin || !module) return null;
  const [dl, echo] = await Promise.all([freePort(), freePort()]);
  const cfg = path.join(dir, 'nginx-stream.conf');
  const template = fs.readFileSync(path.join(here, 'peers', 'nginx-stream.conf.template'), 'utf8');
  fs.writeFileSync(cfg, renderTemplate(template, { WORKERS: 1, DIR: dir, MODULE: module, DL_PORT: dl, ECHO_PORT: echo, DL_BACKEND: `127.0.0.1:${ports.dl}`, ECHO_BACKEND: `127.0.0.1:${ports.echo}` }));
  return { dl, echo, handle: startProcess('nginx', bin, ['-e', path.join(dir, 'nginx.error.log'), '-p', dir, '-c', cfg]) };
}

async function waitForPort(port, timeoutMs = 10_000) {
  const started = Date.now();
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() - started > timeoutMs) throw new Error(`port ${port} not listening after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** RSS (MiB) of the target's process group before, at its peak during, and after `count` connections. */
async function rssOver(pgid, port, count) {
  const mib = () => (groupCpu(pgid)?.rssKb ?? 0) / 1024;
  const before = mib();
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, mib())), 100);
  await connectionRate(port, count, 100);
  clearInterval(sampler);
  const after = mib();
  return { before, peak: Math.max(peak, after), after };
}

function report(rows, opts) {
  const haproxy = rows.find((r) => r.target === 'haproxy' && !r.error);
  const fmt = (v, d = 0) => (v === null || v === undefined ? '-' : v.toFixed(d));
  const ratio = (r, key) => (haproxy && r[key] && haproxy[key] ? `${(r[key] / haproxy[key]).toFixed(2)}x` : '-');
  const lines = [
    `L4: ${opts.bytes / 2 ** 20} MiB per transfer row, ${opts.conns} connections, ${opts.rssConns} for RSS (ratios against HAProxy, one thread each)`,
    '',
    '| target | MB/s 1 conn | MB/s 16 conns | MB per CPU-s | CPU ms/MB | conns/s | conns per CPU-s | RSS MiB before / peak / after | vs HAProxy: MB/s 16, MB per CPU-s, conns/s, conns per CPU-s |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const r of rows) {
    if (r.error) {
      lines.push(`| ${r.target} | ${r.error} | | | | | | | |`);
      continue;
    }
    const rss = r.rss === null ? '-' : `${fmt(r.rss.before, 1)} / ${fmt(r.rss.peak, 1)} / ${fmt(r.rss.after, 1)}`;
    const vs = r.target === 'haproxy' || r.target === 'direct' ? '' : [ratio(r, 'mbps16'), ratio(r, 'mbPerCpuS'), ratio(r, 'connsPerS'), ratio(r, 'connsPerCpuS')].join(', ');
    lines.push(`| ${r.target} | ${fmt(r.mbps1)} | ${fmt(r.mbps16)} | ${fmt(r.mbPerCpuS)} | ${fmt(r.cpuMsPerMb, 2)} | ${fmt(r.connsPerS)} | ${fmt(r.connsPerCpuS)} | ${rss} | ${vs} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  if (opts.json) fs.writeFileSync(opts.json, `${JSON.stringify({ at: new Date().toISOString(), options: opts, rows }, null, 2)}\n`);
}
