// Every benchmark scenario in sequence: quick, slow backend, killed backend, TLS, access log.
// Each runs as its own process with its default options (one at a time: two concurrent runs would
// measure each other); a scenario that fails does not stop the others. Ends with one line per
// scenario: exit status and wall time. `npm run bench` builds first, then runs this.
// --smoke runs each with tiny durations (about a minute in all): it checks that everything starts,
// measures and writes its files, and its numbers mean nothing.
//
//   node bench/all.js [--only quick,slow,killed,tls,access-log] [--smoke]
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const SCENARIOS = [
  { name: 'quick', script: 'quick.js', smoke: ['--duration', '1', '--warmup', '0'] },
  { name: 'slow', script: 'slow-backend.js', smoke: ['--duration', '1', '--warmup', '0'] },
  { name: 'killed', script: 'killed-backend.js', smoke: ['--duration', '3', '--kill-at', '1', '--restart-at', '2'] },
  { name: 'tls', script: 'tls.js', smoke: ['--duration', '1', '--warmup', '0', '--handshake-duration', '1'] },
  { name: 'access-log', script: 'access-log.js', smoke: ['--duration', '1', '--warmup', '0', '--rounds', '1'] },
];

let values;
try {
  ({ values } = parseArgs({ options: { only: { type: 'string' }, smoke: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }));
} catch (err) {
  console.error(err.message);
  process.exit(2);
}
if (values.help) {
  console.log(`usage: node bench/all.js [--only ${SCENARIOS.map((s) => s.name).join(',')}] [--smoke]`);
  process.exit(0);
}
const picked = values.only ? values.only.split(',').map((s) => s.trim()).filter(Boolean) : SCENARIOS.map((s) => s.name);
for (const p of picked) {
  if (!SCENARIOS.some((s) => s.name === p)) {
    console.error(`--only: unknown scenario "${p}" (known: ${SCENARIOS.map((s) => s.name).join(', ')})`);
    process.exit(2);
  }
}

let child = null;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    // The scenario cleans up its own children on this signal.
    if (child) child.kill(sig);
    process.exit(130);
  });
}

const summary = [];
for (const s of SCENARIOS.filter((x) => picked.includes(x.name))) {
  const args = values.smoke ? s.smoke : [];
  console.log(`\n=== ${s.name}: node bench/${[s.script, ...args].join(' ')} ===\n`);
  const started = Date.now();
  const code = await new Promise((resolve) => {
    child = spawn(process.execPath, [path.join(benchDir, s.script), ...args], { stdio: 'inherit' });
    child.on('error', () => resolve(1));
    child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });
  child = null;
  summary.push({ name: s.name, code, seconds: (Date.now() - started) / 1000 });
}

console.log('\n=== summary ===');
for (const r of summary) console.log(`  ${r.name.padEnd(11)} ${r.code === 0 ? 'done' : `FAILED (exit ${r.code})`}  ${r.seconds.toFixed(0)} s`);
console.log('results in bench/results/');
process.exitCode = summary.some((r) => r.code !== 0) ? 1 : 0;
