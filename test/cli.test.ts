// The sluice command: in-process through run(), then the built dist/src/cli.js as a child process
// (exit codes, stdout vs stderr, the shebang entry check). Build first: `npx tsc -p tsconfig.json`.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EXIT_CONFIG, EXIT_OK, EXIT_USAGE, run, summarize } from '../src/cli.js';
import { parseEnv } from '../src/config/env.js';
import { VARIABLE_SPECS } from '../src/config/variables.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
const BUILT_CLI = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url));

/** Runs the command in-process and captures what it writes. */
async function runCli(argv: string[], env: NodeJS.ProcessEnv = {}) {
  let stdout = '';
  let stderr = '';
  const code = await run(argv, env, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
  });
  return { code, stdout, stderr };
}

/** Runs the built CLI with only PATH and the given variables (no SLUICE_* leaks in from this shell). */
function runBuilt(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawnSync(process.execPath, [BUILT_CLI, ...argv], {
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: child.status, stdout: child.stdout, stderr: child.stderr };
}

t.test('--help lists usage and every variable with its default', async (t) => {
  for (const flag of ['--help', '-h']) {
    const { code, stdout, stderr } = await runCli([flag]);
    t.equal(code, EXIT_OK);
    t.equal(stderr, '');
    t.match(stdout, /^Usage: sluice \[--check \| --help \| --version\]/);
    for (const spec of VARIABLE_SPECS) {
      t.match(stdout, `  ${spec.name}  (default: ${spec.default === '' ? 'empty' : spec.default})`);
    }
    t.ok(stdout.split('\n').every((line) => line.length <= 90), 'lines are wrapped');
  }
});

t.test('--version prints the package version', async (t) => {
  for (const flag of ['--version', '-v']) {
    const { code, stdout } = await runCli([flag]);
    t.equal(code, EXIT_OK);
    t.equal(stdout, `${pkg.version}\n`);
  }
});

t.test('unknown arguments are a usage error', async (t) => {
  for (const argv of [['--bogus'], ['start'], ['--check', '-x']]) {
    const { code, stdout, stderr } = await runCli(argv);
    t.equal(code, EXIT_USAGE);
    t.equal(stdout, '');
    t.match(stderr, /^sluice: unknown argument ".+"\nUsage: sluice/);
  }
});

t.test('--check with a good environment', async (t) => {
  const { code, stdout, stderr } = await runCli(['--check'], {
    SLUICE_LISTEN: '[::]:9000',
    SLUICE_WORKERS: '3',
    SLUICE_UPSTREAMS: 'http://a,http://b?weight=2',
    SLUICE_BALANCER: 'maglev',
  });
  t.equal(code, EXIT_OK);
  t.equal(stderr, '');
  t.equal(
    stdout,
    'sluice: configuration OK\nsluice: listen [::]:9000, 3 workers, balancer maglev, 2 upstreams, log level info\n',
  );
});

t.test('--check prints every error and warning to stderr', async (t) => {
  const { code, stdout, stderr } = await runCli(['--check'], {
    SLUICE_WORKERS: 'abc',
    SLUICE_LOG_LEVEL: 'loud',
    SLUICE_BALANSER: 'random',
  });
  t.equal(code, EXIT_CONFIG);
  t.equal(stdout, '');
  t.same(stderr.trimEnd().split('\n'), [
    'sluice: warning: SLUICE_BALANSER is not a Sluice variable and is ignored (did you mean SLUICE_BALANCER?)',
    'sluice: SLUICE_WORKERS="abc": expected an integer from 1 to 64, or "auto"',
    'sluice: SLUICE_LOG_LEVEL="loud": expected one of fatal, error, warn, info, debug, trace, silent',
    'sluice: configuration has 2 errors',
  ]);
});

t.test('--check passes with warnings only', async (t) => {
  const { code, stdout, stderr } = await runCli(['--check'], { SLUICE_WOKERS: '2' });
  t.equal(code, EXIT_OK);
  t.match(stdout, /^sluice: configuration OK\n/);
  t.match(stderr, /^sluice: warning: SLUICE_WOKERS .*did you mean SLUICE_WORKERS\?/);
});

t.test('starting with a bad environment exits 1 before loading the server', async (t) => {
  const { code, stderr } = await runCli([], { SLUICE_LISTEN: 'nowhere' });
  t.equal(code, EXIT_CONFIG);
  t.match(stderr, /^sluice: SLUICE_LISTEN="nowhere": expected /);
});

t.test('summary line', async (t) => {
  const result = parseEnv({ SLUICE_WORKERS: '1', SLUICE_UPSTREAMS: 'http://a' });
  t.ok(result.ok);
  if (result.ok) {
    t.equal(summarize(result.config), 'listen 0.0.0.0:8080, 1 worker, balancer peak-ewma, 1 upstream, log level info');
  }
});

t.test('the built CLI', async (t) => {
  if (!existsSync(BUILT_CLI)) {
    t.fail(`${BUILT_CLI} is missing: run \`npx tsc -p tsconfig.json\` first`);
    return;
  }
  t.match(readFileSync(BUILT_CLI, 'utf8'), /^#!\/usr\/bin\/env node\n/, 'shebang is the first line');

  t.test('--check OK', async (t) => {
    const { code, stdout, stderr } = runBuilt(['--check'], {
      SLUICE_UPSTREAMS: 'http://127.0.0.1:9001,https://[::1]:9443?weight=0.5',
      SLUICE_WORKERS: '2',
    });
    t.equal(code, 0, stderr);
    t.equal(stderr, '');
    t.equal(stdout, 'sluice: configuration OK\nsluice: listen 0.0.0.0:8080, 2 workers, balancer peak-ewma, 2 upstreams, log level info\n');
  });

  t.test('--check with errors', async (t) => {
    const { code, stdout, stderr } = runBuilt(['--check'], {
      SLUICE_WORKERS: '0',
      SLUICE_UPSTREAMS: 'http://a/api',
      SLUICE_MAGLEV_TABLE_SIZE: '100',
    });
    t.equal(code, 1);
    t.equal(stdout, '');
    const lines = stderr.trimEnd().split('\n');
    t.equal(lines.length, 4);
    t.ok(lines.every((line) => line.startsWith('sluice: ')), 'every line is prefixed');
    t.match(stderr, 'SLUICE_UPSTREAMS="http://a/api" (item 1): expected a URL without a path');
    t.match(stderr, 'SLUICE_WORKERS="0": expected an integer from 1 to 64, or "auto"');
    t.match(stderr, 'SLUICE_MAGLEV_TABLE_SIZE="100": expected a prime number from 7 to 1000003 (next prime up: 101)');
  });

  t.test('no flag with errors exits 1', async (t) => {
    const { code, stderr } = runBuilt([], { SLUICE_LISTEN: '[::1]:0' });
    t.equal(code, 1);
    t.match(stderr, /^sluice: SLUICE_LISTEN="\[::1\]:0": expected /);
  });

  t.test('--version and --help', async (t) => {
    const version = runBuilt(['--version']);
    t.equal(version.code, 0);
    t.equal(version.stdout, `${pkg.version}\n`);
    const help = runBuilt(['--help']);
    t.equal(help.code, 0);
    for (const spec of VARIABLE_SPECS) t.match(help.stdout, spec.name);
  });

  t.test('unknown flag exits 2', async (t) => {
    const { code, stderr } = runBuilt(['--frobnicate']);
    t.equal(code, 2);
    t.match(stderr, /unknown argument "--frobnicate"/);
  });
});
