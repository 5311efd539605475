// The config file (SLUICE_CONFIG): read, parsed as YAML (or JSON: a .json name, or text starting
// with "{"), and checked. Every problem is collected and reported as
//   <file>: <where>: <what is wrong>
// e.g. sluice.yaml: routes[3] (name "shop"): unknown pool "wbe". Top-level keys: pools, routes,
// listeners (L4, file-l4.ts), defaults (edge policy for every route: docs/edge.md), and x-*
// (ignored, for YAML anchors of shared settings).

import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { DEFAULT_POOL, type PoolSpec } from '../model/pool.js';
import type { RouteSpec } from '../model/route.js';
import { readPools } from './file-pools.js';
import { readRoutes } from './file-routes.js';
import { readListeners } from './file-l4.js';
import { listenerPools, type L4ListenerSpec } from '../model/listener.js';
import { checkDefaults } from './file-edge.js';
import { checkKeys, describe, isMap, Problems, type Problem } from './file-values.js';

export class ConfigFileError extends Error {
  override readonly name = 'ConfigFileError';
  readonly file: string;
  /** "routes[3] (name \"shop\")", "pools.api.balancer", "3:5" (line:column), or '' for the whole file. */
  readonly where: string;
  readonly problem: string;
  constructor(file: string, where: string, problem: string) {
    // A line:column position reads as file:3:5, the form editors jump to.
    const at = where === '' ? '' : /^\d+:\d+$/.test(where) ? `:${where}` : `: ${where}`;
    super(`${file}${at}: ${problem}`);
    this.file = file;
    this.where = where;
    this.problem = problem;
  }
}

export interface ConfigFileContent {
  /** In file order. */
  readonly pools: PoolSpec[];
  /** null when the file has no routes key (then everything goes to the default pool). */
  readonly routes: RouteSpec[] | null;
  /** L4 listeners, in file order ([] without a listeners key). */
  readonly listeners: L4ListenerSpec[];
}

export type ConfigFileResult =
  | { readonly ok: true; readonly content: ConfigFileContent; readonly warnings: string[] }
  | { readonly ok: false; readonly errors: ConfigFileError[]; readonly warnings: string[] };

export interface ConfigFileOptions {
  /** Pools that exist without being in the file (SLUICE_UPSTREAMS makes "default"). */
  readonly externalPools: ReadonlySet<string>;
  /** Pools the env-declared L4 listeners (SLUICE_TCP_LISTEN, SLUICE_UDP_LISTEN) send to. */
  readonly envL4Pools?: ReadonlySet<string>;
}

/** A route table, not a data set: far above 1,000 routes, far below what could hurt start-up. */
export const MAX_FILE_BYTES = 16 * 1024 * 1024;

export async function readConfigFile(path: string, options: ConfigFileOptions): Promise<ConfigFileResult> {
  let text: string;
  try {
    const bytes = await readFile(path);
    if (bytes.length > MAX_FILE_BYTES) return failed(path, '', `larger than ${MAX_FILE_BYTES} bytes`);
    text = bytes.toString('utf8');
  } catch (err) {
    return failed(path, '', `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseConfigFile(text, path, options);
}

/** Parse and check `text`; `path` names the file in messages and anchors relative paths in it. */
export function parseConfigFile(text: string, path: string, options: ConfigFileOptions): ConfigFileResult {
  const parsed = parseText(text, path);
  if (!parsed.ok) return parsed;
  const problems = new Problems();
  const doc = parsed.value;
  if (!isMap(doc)) {
    const what = doc === null || doc === undefined ? 'an empty file' : describe(doc);
    return failed(path, '', `expected a map with pools: and routes:, got ${what}`);
  }
  checkKeys(doc, ['pools', 'routes', 'listeners', 'defaults'], '', problems);
  const defaults = doc.defaults === undefined ? undefined : checkDefaults(doc.defaults, problems);
  if (defaults !== undefined && doc.routes === undefined) problems.add('defaults', 'only applies to routes: add a routes: list (match: {} sends everything to one pool)');
  const pools = doc.pools === undefined ? [] : readPools(doc.pools, problems, dirname(resolve(path)));
  const names = new Set([...options.externalPools, ...Object.keys(isMap(doc.pools) ? doc.pools : {})]);
  if (doc.pools === undefined && !options.externalPools.has(DEFAULT_POOL)) {
    problems.add('', 'no pools: declare them under pools:, or set SLUICE_UPSTREAMS for the pool "default"');
  }
  const listeners = doc.listeners === undefined ? [] : readListeners(doc.listeners, names, problems);
  const envL4 = options.envL4Pools ?? new Set<string>();
  const l4Pools = new Set([...envL4, ...listeners.flatMap(listenerPools)]);
  let routes = doc.routes === undefined ? null : readRoutes(doc.routes, problems, names, dirname(resolve(path)), defaults);
  // A file for L4 listeners alone (its own or the env's): HTTP requests find no route (404), rather
  // than a pool "default".
  if (routes === null && !names.has(DEFAULT_POOL) && (doc.listeners !== undefined || envL4.size > 0)) routes = [];
  if (routes === null && !names.has(DEFAULT_POOL)) {
    problems.add('', 'no routes: and no pool "default" to send every request to');
  }
  for (const pool of pools) {
    const used = l4Pools.has(pool.name) || (routes === null ? pool.name === DEFAULT_POOL : routes.some((r) => usesPool(r, pool.name)));
    if (!used) problems.warn(`pools.${pool.name}`, 'no route sends traffic to this pool');
  }
  const warnings = [...parsed.warnings, ...problems.warnings.map((w) => format(path, w))];
  if (problems.count > 0) return { ok: false, errors: problems.list.map((p) => new ConfigFileError(path, p.where, p.problem)), warnings };
  return { ok: true, content: { pools, routes, listeners }, warnings };
}

function usesPool(route: RouteSpec, pool: string): boolean {
  const a = route.action;
  return (a.kind === 'pool' && a.pool === pool) || (a.kind === 'split' && a.targets.some((t) => t.pool === pool && t.weight > 0));
}

function format(file: string, p: Problem): string {
  return p.where === '' ? `${file}: ${p.problem}` : `${file}: ${p.where}: ${p.problem}`;
}

function failed(file: string, where: string, problem: string): ConfigFileResult {
  return { ok: false, errors: [new ConfigFileError(file, where, problem)], warnings: [] };
}

type Parsed = { ok: true; value: unknown; warnings: string[] } | { ok: false; errors: ConfigFileError[]; warnings: string[] };

function parseText(text: string, path: string): Parsed {
  if (path.toLowerCase().endsWith('.json') || text.trimStart().startsWith('{')) {
    try {
      return { ok: true, value: JSON.parse(text), warnings: [] };
    } catch (err) {
      return { ok: false, errors: [new ConfigFileError(path, '', `not valid JSON: ${(err as Error).message}`)], warnings: [] };
    }
  }
  // YAML 1.2 (so "on" and "no" stay strings), merge keys (<<: *shared) allowed, duplicate keys refused.
  const doc = parseDocument(text, { merge: true, uniqueKeys: true, prettyErrors: true });
  const where = (e: { linePos?: [{ line: number; col: number }, ...unknown[]] }) => (e.linePos === undefined ? '' : `${e.linePos[0].line}:${e.linePos[0].col}`);
  const message = (e: Error) => e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  const warnings = doc.warnings.map((w) => `${path}:${where(w)}: ${message(w)}`);
  if (doc.errors.length > 0) {
    return { ok: false, errors: doc.errors.map((e) => new ConfigFileError(path, where(e), `not valid YAML: ${message(e)}`)), warnings };
  }
  return { ok: true, value: doc.toJS({ maxAliasCount: 1000 }), warnings };
}
