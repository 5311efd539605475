#!/usr/bin/env node
// The `sluice` command: --help, --version, --check (validate and exit, like `nginx -t`), or
// validate and start. `run` is the whole command minus process globals, so tests call it directly.

import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseEnv } from './config/env.js';
import type { Config } from './config/types.js';
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

const USAGE = 'Usage: sluice [--check | --help | --version]';

const FLAG_ALIASES: ReadonlyMap<string, 'help' | 'version' | 'check'> = new Map([
  ['--help', 'help'],
  ['-h', 'help'],
  ['--version', 'version'],
  ['-v', 'version'],
  ['--check', 'check'],
]);

export async function run(argv: readonly string[], env: NodeJS.ProcessEnv, out: CliOutput): Promise<number> {
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

  const result = parseEnv(env);
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
    if (tls.files !== null) out.stdout.write(`sluice: ${describeTls(result.config, tls.files)}\n`);
    return EXIT_OK;
  }
  const { start } = await import('./main.js');
  await start(result.config, [...result.warnings, ...tls.warnings]);
  return EXIT_OK;
}

/** One line: what would run. */
export function summarize(config: Config): string {
  const { host, port } = config.listen;
  const listen = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const pool =
    config.upstreams.length === 0
      ? 'demo pool'
      : `${config.upstreams.length} upstream${config.upstreams.length === 1 ? '' : 's'}`;
  const workers = `${config.workers} worker${config.workers === 1 ? '' : 's'}`;
  return `listen ${listen}, ${workers}, balancer ${config.balancer}, ${pool}, log level ${config.logLevel}`;
}

const DOC_WIDTH = 76;
const DOC_INDENT = '      ';

export function helpText(): string {
  const lines = [
    USAGE,
    '',
    '  --check        validate the environment, print a summary or every error, and exit',
    '  -h, --help     print this help',
    '  -v, --version  print the version',
    '',
    'With no option, Sluice validates the environment and starts.',
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
