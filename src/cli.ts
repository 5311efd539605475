#!/usr/bin/env node
// The `sluice` command: --help, --version, --check (validate and exit, like `nginx -t`), --explain
// (which route a request takes), or validate and start. `run` is the whole command minus process
// globals, so tests call it directly.

import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { explain, EXPLAIN_USAGE, ExplainUsageError, parseExplainArgs, type ExplainRequest } from './cli-explain.js';
import { loadConfig } from './config/load.js';
import type { Config, ResolvedConfig } from './config/types.js';
import { VARIABLE_SPECS } from './config/variables.js';
import { checkTls, describeTls } from './tls/files.js';

export interface CliOutput {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

/** Exit codes: 0 ok, 1 bad configuration, 2 bad command line (the usual usage-error code). */
export const EXIT_OK = 0;
export const EXIT_CONFIG = 1;
export const EXIT_USAGE = 2;
/** --explain: no route matched. (--explain reports configuration errors with EXIT_USAGE.) */
export const EXIT_NO_ROUTE = 1;

const USAGE = `Usage: sluice [--check | --help | --version]\n       ${EXPLAIN_USAGE}`;

const FLAG_ALIASES: ReadonlyMap<string, 'help' | 'version' | 'check'> = new Map([
  ['--help', 'help'],
  ['-h', 'help'],
  ['--version', 'version'],
  ['-v', 'version'],
  ['--check', 'check'],
]);

export async function run(argv: readonly string[], env: NodeJS.ProcessEnv, out: CliOutput): Promise<number> {
  if (argv[0] === '--explain') return runExplain(argv.slice(1), env, out);
  const flags = new Set<string>();
  for (const arg of argv) {
    const flag = FLAG_ALIASES.get(arg);
    if (flag === undefined) {
      out.stderr.write(`sluice: unknown argument ${JSON.stringify(arg)}\n${USAGE}\n`);
      return EXIT_USAGE;
    }
    flags.add(flag);
  }
  if (flags.has('help')) {
    out.stdout.write(helpText());
    return EXIT_OK;
  }
  if (flags.has('version')) {
    out.stdout.write(`${readVersion()}\n`);
    return EXIT_OK;
  }

  const result = await loadConfig(env);
  const check = flags.has('check');
  // Starting hands warnings to main, which logs them; --check has no logger, so print them.
  if (check || !result.ok) for (const w of result.warnings) out.stderr.write(`sluice: warning: ${w}\n`);
  if (!result.ok) {
    for (const error of result.errors) out.stderr.write(`sluice: ${error.message}\n`);
    const count = result.errors.length;
    out.stderr.write(`sluice: configuration has ${count} error${count === 1 ? '' : 's'}\n`);
    return EXIT_CONFIG;
  }
  // TLS files need I/O and their messages name files: checked once the variables are valid.
  const tls = checkTls(result.config);
  if (check || tls.errors.length > 0) for (const w of tls.warnings) out.stderr.write(`sluice: warning: ${w}\n`);
  if (tls.errors.length > 0) {
    for (const error of tls.errors) out.stderr.write(`sluice: ${error}\n`);
    const count = tls.errors.length;
    out.stderr.write(`sluice: configuration has ${count} error${count === 1 ? '' : 's'}\n`);
    return EXIT_CONFIG;
  }
  if (check) {
    out.stdout.write(`sluice: configuration OK\nsluice: ${summarize(result.config)}\n`);
    if (result.config.configFile !== '') out.stdout.write(`sluice: ${summarizeRouting(result.config)}\n`);
    if (tls.files !== null) out.stdout.write(`sluice: ${describeTls(result.config, tls.files)}\n`);
    return EXIT_OK;
  }
  const { start } = await import('./main.js');
  await start(result.config, [...result.warnings, ...tls.warnings]);
  return EXIT_OK;
}

/** One line: what would run. */
export function summarize(config: Config | ResolvedConfig): string {
  const at = config.listen;
  const listen = at === null ? 'off' : at.host.includes(':') ? `[${at.host}]:${at.port}` : `${at.host}:${at.port}`;
  const fromFile = config.configFile !== '' && 'pools' in config;
  const count = fromFile ? config.pools.reduce((n, p) => n + p.upstreams.length, 0) : config.upstreams.length;
  const discovering = fromFile && (config as ResolvedConfig).pools.some((p) => p.discovery !== undefined);
  const upstreams = `${count} upstream${count === 1 ? '' : 's'}`;
  const pool = count === 0 && !discovering ? 'demo pool' : discovering ? `${upstreams} + discovered` : upstreams;
  const workers = `${config.workers} worker${config.workers === 1 ? '' : 's'}`;
  const l4 = 'listeners' in config && config.listeners.length > 0 ? `, L4 ${config.listeners.map((l) => l.name).join(', ')}` : '';
  return `listen ${listen}, ${workers}, balancer ${config.balancer}, ${pool}, log level ${config.logLevel}${l4}`;
}

/** One line: the pools and routes of the config file. */
export function summarizeRouting(config: ResolvedConfig): string {
  // A discovering pool: its static count, then its sources (api (2 + etcd, registry)).
  const found = (p: ResolvedConfig['pools'][number]): string => {
    const d = p.discovery;
    if (d === undefined) return '';
    const kinds = [...d.sources.map((x) => x.kind), ...(d.registry ? ['registry'] : [])];
    return ` + ${kinds.join(', ')}`;
  };
  const pools = config.pools.map((p) => `${p.name} (${p.upstreams.length}${found(p)})`).join(', ');
  const routes = `${config.routes.length} route${config.routes.length === 1 ? '' : 's'}`;
  return `${config.configFile}: ${config.pools.length} pool${config.pools.length === 1 ? '' : 's'} [${pools}], ${routes}`;
}

/** Exit: 0 a route matched, 1 none did, 2 bad arguments or configuration. */
async function runExplain(args: readonly string[], env: NodeJS.ProcessEnv, out: CliOutput): Promise<number> {
  let request: ExplainRequest;
  try {
    request = parseExplainArgs(args);
  } catch (err) {
    if (!(err instanceof ExplainUsageError)) throw err;
    out.stderr.write(`sluice: --explain: ${err.message}\nUsage: ${EXPLAIN_USAGE}\n`);
    return EXIT_USAGE;
  }
  const result = await loadConfig(env);
  for (const w of result.warnings) out.stderr.write(`sluice: warning: ${w}\n`);
  if (!result.ok) {
    for (const error of result.errors) out.stderr.write(`sluice: ${error.message}\n`);
    out.stderr.write(`sluice: configuration has ${result.errors.length} error${result.errors.length === 1 ? '' : 's'}\n`);
    return EXIT_USAGE;
  }
  const { matched, lines } = explain(result.config, request);
  out.stdout.write(`${lines.join('\n')}\n`);
  return matched ? EXIT_OK : EXIT_NO_ROUTE;
}

const DOC_WIDTH = 76;
const DOC_INDENT = '      ';

export function helpText(): string {
  const lines = [
    USAGE,
    '',
    '  --check        validate the environment and SLUICE_CONFIG, print a summary or every',
    '                 error, and exit',
    '  --explain      print the route a request matches, what it becomes and where it goes;',
    '                 exit 0 when a route matched, 1 when none did, 2 on bad arguments or',
    '                 configuration',
    '  -h, --help     print this help',
    '  -v, --version  print the version',
    '',
    'With no option, Sluice validates the environment (and SLUICE_CONFIG) and starts.',
    'Pools and routes: docs/routing.md.',
    '',
    'Environment variables (unset or empty means the default):',
  ];
  for (const spec of VARIABLE_SPECS) {
    lines.push('', `  ${spec.name}  (default: ${spec.default === '' ? 'empty' : spec.default})`);
    lines.push(...wrap(spec.doc, DOC_WIDTH - DOC_INDENT.length).map((line) => DOC_INDENT + line));
  }
  return `${lines.join('\n')}\n`;
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

/**
 * The built file is dist/src/cli.js, two levels below package.json; tests run src/cli.ts from
 * source, one level below. Try the built layout first.
 */
export function readVersion(): string {
  for (const relative of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'sluice' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // Not at this depth: try the next.
    }
  }
  return 'unknown';
}

/** True when this file is the process entry (also through npm's bin symlink), not an import. */
function isEntryModule(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntryModule()) {
  run(process.argv.slice(2), process.env, process).then(
    (code) => {
      // exitCode, not exit(): a started server keeps running, and pending output is flushed.
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`sluice: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = EXIT_CONFIG;
    },
  );
}
