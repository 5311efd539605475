// TLS scenario (issue 5): keep-alive GETs over HTTPS through Sluice (SLUICE_TLS_LISTEN) and nginx
// (ssl, the same certificate), with Sluice over plain HTTP as the reference, at 1 and 2 workers;
// then new connections per second (one full TLS handshake + one GET each) through both.
// The certificate comes from the project's own generator (dist/src/tls/cert-pool.js, what
// `npm run certs` runs), written to a temporary folder.
//
//   node bench/tls.js [--duration 6] [--warmup 1] [--connections 100] [--workers 1,2]
//                     [--only sluice,nginx] [--handshake-duration 5] [--handshake-concurrency 16]
//                     [--generator wrk|autocannon]
//
// Prints two tables and the issue's targets, writes bench/results/tls-<time>.json.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { runHandshakes } from './lib/handshakes.js';
import { freePort, httpGet, processGroup, startBackend, stopProcess, waitForHttp, watchForeignCpu } from './lib/procs.js';
import {
  formatRatio, formatRps, notesColumn, p50Column, p99Column, ratio, renderTable, rpsColumn, valueColumn,
} from './lib/report.js';
import {
  BENCH_DIR, COMMON_OPTIONS, COMMON_USAGE, REPO_ROOT, applyLoad, beginRun, check, loadRow, machineAndVersions, measureLoad,
  parseOptions, renderChecks, resultHead, runScenario, saveResults, skipOrFail, stopTarget, warnIfBusy,
} from './lib/scenario.js';
import { startNginx, startSluice } from './lib/targets.js';
const GROUPS = ['sluice', 'nginx'];

const USAGE = `usage: node bench/tls.js [options]
  --duration <s>                 seconds measured per keep-alive row (default 6)
  --connections <n>              concurrent keep-alive connections (default 100)
  --workers <list>               worker counts to compare (default 1,2)
  --only <list>                  comma-separated: ${GROUPS.join(', ')} (default both)
  --handshake-duration <s>       seconds of new-connection load per target (default 5, 0 skips it)
  --handshake-concurrency <n>    connections opened at once in that test (default 16)
${COMMON_USAGE}`;

function options() {
  const o = parseOptions({
    ...COMMON_OPTIONS,
    workers: { type: 'string' },
    only: { type: 'string' },
    'handshake-duration': { type: 'string' },
    'handshake-concurrency': { type: 'string' },
  }, USAGE);
  const workers = (o.values.workers ?? '1,2').split(',').map((s) => Number(s.trim()));
  if (workers.some((n) => !Number.isInteger(n) || n < 1)) {
    console.error('--workers takes a comma-separated list of positive integers');
    o.usage(2);
  }
  return {
    durationS: o.int('duration', 1, 6),
    warmupS: o.int('warmup', 0, 1),
    connections: o.int('connections', 1, 100),
    workers,
    only: o.list('only', GROUPS),
    handshakeS: o.int('handshake-duration', 0, 5),
    handshakeConcurrency: o.int('handshake-concurrency', 1, 16),
    generator: o.values.generator,
    threads: o.int('threads', 1, undefined),
    waitQuietS: o.int('wait-quiet', 0, 0),
  };
}

/** A CA and a localhost leaf (localhost, 127.0.0.1, ::1) made by the project's generator. */
async function makeCertificate(dir) {
  const poolModule = path.join(REPO_ROOT, 'dist', 'src', 'tls', 'cert-pool.js');
  if (!fs.existsSync(poolModule)) throw new Error('dist/src/tls/cert-pool.js not found (run npm run build)');
  const { CertPool, writeCertSet } = await import(pathToFileURL(poolModule).href);
  const pool = new CertPool(1);
  try {
    const set = await writeCertSet(pool, dir, [{ file: 'localhost', names: ['localhost', '127.0.0.1', '::1'] }]);
    return { cert: set.leaves[0].certFile, key: set.leaves[0].keyFile, ca: set.ca.certFile };
  } finally {
    await pool.close();
  }
}

/** A keep-alive row: the load fields first, then `fields` (target, workers, scheme). */
const emptyRow = (fields) => loadRow({}, {}, fields);

async function keepAliveRow(fields, url, ctx, pids) {
  const row = emptyRow(fields);
  try {
    applyLoad(row, await measureLoad({
      generator: ctx.generator, url: `${url}/`, connections: ctx.connections, durationS: ctx.durationS,
      warmupS: ctx.warmupS, waitQuietS: ctx.waitQuietS, pids,
    }));
  } catch (err) {
    row.status = 'failed';
    row.reason = err.message;
  }
  return row;
}

async function handshakeRow(fields, port, ctx, pids) {
  const row = {
    status: 'ok', reason: null, connPerS: null, completed: null, failed: null, p50Ms: null, p99Ms: null,
    protocol: null, cipher: null, errors: null, otherCpu: null, notes: [], ...fields,
  };
  try {
    const foreign = watchForeignCpu([processGroup(), ...pids], { startMs: 500, windowMs: Math.max(100, ctx.handshakeS * 1000 - 1000) });
    const r = await runHandshakes({ port, durationS: ctx.handshakeS, concurrency: ctx.handshakeConcurrency });
    Object.assign(row, {
      connPerS: r.handshakesPerS, completed: r.completed, failed: r.failed, p50Ms: r.p50Ms, p99Ms: r.p99Ms,
      protocol: r.protocol, cipher: r.cipher, errors: r.errors,
    });
    row.otherCpu = await foreign;
    if (r.failed > 0) row.notes.push(`${r.failed} failed (${Object.entries(r.errors).map(([k, n]) => `${k} ${n}`).join(', ') || `${r.non2xx} non-2xx`})`);
    if (row.otherCpu !== null && row.otherCpu > 0.1) row.notes.push(`other processes used ${(row.otherCpu * 100).toFixed(0)}% of the CPUs meanwhile`);
  } catch (err) {
    row.status = 'failed';
    row.reason = err.message;
  }
  return row;
}

function failedRows(err, kinds, fields) {
  const status = skipOrFail(err);
  return kinds.map((kind) => ({ kind, row: emptyRow({ ...fields(kind), status, reason: err.message }) }));
}

/** The handshake row of a target that did not start. */
function failedHandshakeRow(base, err) {
  return { ...base, status: skipOrFail(err), reason: err.message, notes: [] };
}

/** Sluice with both listeners: plain row, TLS row, handshake row. */
async function runSluice(n, ctx, out) {
  const base = { target: 'sluice', workers: n };
  let started;
  const tlsPort = await freePort();
  try {
    started = await startSluice({
      repoRoot: REPO_ROOT, port: await freePort(), upstreams: [ctx.backend.url], workers: n,
      env: { SLUICE_TLS_LISTEN: `127.0.0.1:${tlsPort}`, SLUICE_TLS_CERT: ctx.cert.cert, SLUICE_TLS_KEY: ctx.cert.key, SLUICE_ADMIN_LISTEN: 'off' },
    });
    await waitForHttp(started.handle, `https://127.0.0.1:${tlsPort}/`);
  } catch (err) {
    if (started) await stopProcess(started.handle, { signal: 'SIGKILL' });
    for (const { kind, row } of failedRows(err, ['plain', 'tls'], (k) => ({ ...base, scheme: k === 'plain' ? 'http' : 'https' }))) out[kind].push(row);
    if (ctx.handshakeS > 0) out.handshake.push(failedHandshakeRow(base, err));
    return;
  }
  const pids = [started.handle.pid, ctx.backend.handle.pid];
  try {
    out.plain.push(await keepAliveRow({ ...base, scheme: 'http' }, started.url, ctx, pids));
    out.tls.push(await keepAliveRow({ ...base, scheme: 'https' }, `https://127.0.0.1:${tlsPort}`, ctx, pids));
    if (ctx.handshakeS > 0) out.handshake.push(await handshakeRow(base, tlsPort, ctx, pids));
  } finally {
    const note = await stopTarget(started.handle);
    if (note) for (const list of [out.plain, out.tls]) list.at(-1)?.notes.push(note);
  }
}

async function runNginx(n, ctx, out) {
  const base = { target: 'nginx', workers: n };
  const port = await freePort();
  let started;
  try {
    started = await startNginx({
      repoRoot: REPO_ROOT, scratchDir: ctx.scratchDir, port, upstreams: [ctx.backend.url], workers: n,
      template: 'nginx-tls.conf.template', scheme: 'https', values: { CERT: ctx.cert.cert, KEY: ctx.cert.key },
    });
  } catch (err) {
    for (const { row } of failedRows(err, ['tls'], () => ({ ...base, scheme: 'https' }))) out.tls.push(row);
    if (ctx.handshakeS > 0) out.handshake.push(failedHandshakeRow(base, err));
    return;
  }
  const pids = [started.handle.pid, ctx.backend.handle.pid];
  try {
    out.tls.push(await keepAliveRow({ ...base, scheme: 'https' }, started.url, ctx, pids));
    if (ctx.handshakeS > 0) out.handshake.push(await handshakeRow(base, port, ctx, pids));
  } finally {
    const note = await stopTarget(started.handle);
    if (note) out.tls.at(-1)?.notes.push(note);
  }
}

const KEEPALIVE_COLUMNS = [
  { key: 'target', title: 'target', align: 'left' },
  { key: 'scheme', title: 'scheme', align: 'left' },
  { key: 'workers', title: 'workers', align: 'right' },
  rpsColumn,
  p50Column,
  p99Column,
  { key: 'vsSluicePlain', title: 'vs sluice plain(same n)', align: 'right', format: formatRatio },
  { key: 'vsNginxTls', title: 'vs nginx tls(same n)', align: 'right', format: formatRatio },
  notesColumn,
];

const HANDSHAKE_COLUMNS = [
  { key: 'target', title: 'target', align: 'left' },
  { key: 'workers', title: 'workers', align: 'right' },
  // formatRps / formatMs print "-" for undefined too (rows of a target that did not start).
  valueColumn('connPerS', 'new conn/s', formatRps),
  p50Column,
  p99Column,
  { key: 'vsNginx', title: 'vs nginx(same n)', align: 'right', format: formatRatio },
  { key: 'protocol', title: 'negotiated', align: 'left', format: (v, r) => (v ? `${v} ${r.cipher ?? ''}` : '-') },
  notesColumn,
];

async function main() {
  const opts = options();
  const run = await beginRun(opts, 'sluice-bench-tls-');
  const { generator, scratchDir } = run;
  const certStarted = Date.now();
  const cert = await makeCertificate(path.join(scratchDir, 'certs'));
  const certMs = Date.now() - certStarted;
  const backend = await startBackend(BENCH_DIR);
  const probe = await httpGet(`${backend.url}/`);
  if (probe.status !== 200) throw new Error(`backend answered ${probe.status}`);
  const ctx = { ...opts, generator, scratchDir, cert, backend };

  const rowsPerN = (opts.only.includes('sluice') ? 2 : 0) + (opts.only.includes('nginx') ? 1 : 0);
  const hsPerN = opts.handshakeS > 0 ? opts.only.length : 0;
  const estimate = opts.workers.length * (rowsPerN * (opts.warmupS + opts.durationS) + hsPerN * opts.handshakeS + 1);
  console.log(`tls bench: workers ${opts.workers.join(',')}; keep-alive ${opts.warmupS} s warm-up + ${opts.durationS} s per row, `
    + `${opts.connections} connections, generator ${generator.label}; new connections ${opts.handshakeS} s per target, ${opts.handshakeConcurrency} at once`);
  console.log(`certificate: RSA 2048 from the project's generator (${certMs} ms); estimated ~${Math.ceil(estimate)} s`);
  const warning = warnIfBusy(run.busyBefore);
  console.log('');

  const out = { plain: [], tls: [], handshake: [] };
  for (const n of opts.workers) {
    if (opts.only.includes('sluice')) {
      process.stdout.write(`  sluice (${n})  `);
      await runSluice(n, ctx, out);
      const [p, t, h] = [out.plain.at(-1), out.tls.at(-1), out.handshake.at(-1)];
      console.log(`plain ${formatRps(p?.rps)} req/s, tls ${formatRps(t?.rps)} req/s${opts.handshakeS > 0 ? `, ${formatRps(h?.connPerS)} new conn/s` : ''}`
        + `${[p, t, h].some((r) => r && r.status !== 'ok') ? ` (${[p, t, h].filter((r) => r && r.status !== 'ok').map((r) => `${r.status}: ${r.reason}`)[0]})` : ''}`);
    }
    if (opts.only.includes('nginx')) {
      process.stdout.write(`  nginx (${n})   `);
      await runNginx(n, ctx, out);
      const [t, h] = [out.tls.at(-1), out.handshake.at(-1)];
      console.log(`tls ${formatRps(t?.rps)} req/s${opts.handshakeS > 0 ? `, ${formatRps(h?.connPerS)} new conn/s` : ''}`
        + `${t && t.status !== 'ok' ? ` (${t.status}: ${t.reason})` : ''}`);
    }
  }
  await stopProcess(backend.handle);

  const ok = (r) => r && r.status === 'ok';
  const keepAlive = [...out.plain, ...out.tls].sort((a, b) => a.workers - b.workers || (a.target === b.target ? 0 : a.target === 'sluice' ? -1 : 1) || a.scheme.localeCompare(b.scheme));
  for (const r of keepAlive) {
    const plain = out.plain.find((x) => x.workers === r.workers);
    const nginx = out.tls.find((x) => x.target === 'nginx' && x.workers === r.workers);
    r.vsSluicePlain = ok(r) && ok(plain) ? ratio(r.rps, plain.rps) : null;
    r.vsNginxTls = ok(r) && ok(nginx) && r.scheme === 'https' ? ratio(r.rps, nginx.rps) : null;
  }
  for (const r of out.handshake) {
    const nginx = out.handshake.find((x) => x.target === 'nginx' && x.workers === r.workers);
    r.vsNginx = ok(r) && ok(nginx) ? ratio(r.connPerS, nginx.connPerS) : null;
  }
  const checks = [];
  for (const n of opts.workers) {
    const t = out.tls.find((x) => x.target === 'sluice' && x.workers === n);
    const p = out.plain.find((x) => x.workers === n);
    const g = out.tls.find((x) => x.target === 'nginx' && x.workers === n);
    checks.push(check(`${n} worker(s): Sluice TLS keep-alive >= 0.8x Sluice plain`, ok(t) && ok(p),
      () => ({ pass: t.rps >= 0.8 * p.rps, detail: `${formatRps(t.rps)} vs ${formatRps(p.rps)} (${formatRatio(ratio(t.rps, p.rps))})` })));
    checks.push(check(`${n} worker(s): Sluice TLS keep-alive >= nginx TLS`, ok(t) && ok(g),
      () => ({ pass: t.rps >= g.rps, detail: `${formatRps(t.rps)} vs ${formatRps(g.rps)} (${formatRatio(ratio(t.rps, g.rps))})` })));
  }

  const wallS = run.elapsedS();
  console.log(`\nkeep-alive GET / (${generator.label}, -c ${opts.connections}, ${opts.durationS} s):`);
  console.log(renderTable(KEEPALIVE_COLUMNS, keepAlive));
  if (opts.handshakeS > 0) {
    console.log(`\nnew connections: full TLS handshake + one GET each, ${opts.handshakeConcurrency} at once for ${opts.handshakeS} s (Node client in the harness, no session resumption):`);
    console.log(renderTable(HANDSHAKE_COLUMNS, out.handshake));
  }
  console.log('\ntargets (issue 5):');
  console.log(renderChecks(checks));
  console.log(`\nwall time ${wallS.toFixed(1)} s; ratios compare rows of this run only`);
  if (warning) console.log(`WARNING: ${warning}`);

  saveResults('tls', run, {
    ...resultHead('TLS termination: keep-alive GET / over HTTPS (Sluice, nginx) vs Sluice plain HTTP; new TLS connections per second', run, opts, wallS),
    handshake: { durationSeconds: opts.handshakeS, concurrency: opts.handshakeConcurrency, client: 'node:tls, no resumption, certificate not verified' },
    certificate: 'RSA 2048 leaf for localhost/127.0.0.1/::1 signed by a generated CA (dist/src/tls/cert-pool.js)',
    ...machineAndVersions(run),
    keepAlive,
    handshakes: out.handshake,
    targets: checks,
  });
}

runScenario('tls', main);
