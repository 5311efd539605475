// Typed reading of a parsed config file (YAML or JSON gives `unknown`): each reader returns the
// value or undefined, recording "where: what is wrong" in a Problems list, so one run reports every
// problem of the file. `where` is a path such as pools.api.health.interval_ms or
// routes[3] (name "shop").match.host.

import { didYouMean } from './suggest.js';

export interface Problem {
  readonly where: string;
  readonly problem: string;
}

export class Problems {
  readonly list: Problem[] = [];
  readonly warnings: Problem[] = [];

  add(where: string, problem: string): void {
    this.list.push({ where, problem });
  }

  warn(where: string, problem: string): void {
    this.warnings.push({ where, problem });
  }

  get count(): number {
    return this.list.length;
  }
}

export type FileMap = Record<string, unknown>;

export function isMap(value: unknown): value is FileMap {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** "a string (\"5s\")", "a number (5)", "a list", "a map", "null". */
export function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nothing (null)';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  const shown = JSON.stringify(value);
  const short = shown.length > 40 ? `${shown.slice(0, 40)}…` : shown;
  if (typeof value === 'string') return `a string (${short})`;
  if (typeof value === 'number') return `a number (${short})`;
  if (typeof value === 'boolean') return `${short}`;
  return typeof value;
}

/** Join a key onto a path: "pools.api" + "balancer", "routes[2]" + "match". */
export function at(where: string, key: string | number): string {
  if (typeof key === 'number') return `${where}[${key}]`;
  return where === '' ? key : `${where}.${key}`;
}

/**
 * Reports keys of `map` outside `allowed` (with a suggestion). Keys starting with "x-" are
 * extensions, ignored, so YAML anchors for shared settings can live beside the real keys.
 */
export function checkKeys(map: FileMap, allowed: readonly string[], where: string, problems: Problems): void {
  for (const key of Object.keys(map)) {
    if (allowed.includes(key) || key.startsWith('x-')) continue;
    problems.add(where, `unknown key ${JSON.stringify(key)}${didYouMean(key, allowed)}; known keys: ${allowed.join(', ')}`);
  }
}

export function readMap(value: unknown, where: string, problems: Problems): FileMap | undefined {
  if (isMap(value)) return value;
  problems.add(where, `expected a map of keys, got ${describe(value)}`);
  return undefined;
}

export function readList(value: unknown, where: string, problems: Problems): unknown[] | undefined {
  if (Array.isArray(value)) return value;
  problems.add(where, `expected a list, got ${describe(value)}`);
  return undefined;
}

export function readString(value: unknown, where: string, problems: Problems): string | undefined {
  if (typeof value === 'string') return value;
  const hint = typeof value === 'number' || typeof value === 'boolean' ? ` (quote it: "${String(value)}")` : '';
  problems.add(where, `expected a string, got ${describe(value)}${hint}`);
  return undefined;
}

export function readNumber(value: unknown, where: string, problems: Problems): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  problems.add(where, `expected a number, got ${describe(value)}`);
  return undefined;
}

export function readBoolean(value: unknown, where: string, problems: Problems): boolean | undefined {
  if (typeof value === 'boolean') return value;
  problems.add(where, `expected true or false, got ${describe(value)}`);
  return undefined;
}

/** A list of strings; undefined (with problems) when it is not one. */
export function readStrings(value: unknown, where: string, problems: Problems): string[] | undefined {
  const list = readList(value, where, problems);
  if (list === undefined) return undefined;
  const out: string[] = [];
  let ok = true;
  list.forEach((item, i) => {
    const s = readString(item, at(where, i), problems);
    if (s === undefined) ok = false;
    else out.push(s);
  });
  return ok ? out : undefined;
}

/** A map of name to string value, as header lists are written: { x-env: prod }. */
export function readStringMap(value: unknown, where: string, problems: Problems): { name: string; value: string }[] | undefined {
  const map = readMap(value, where, problems);
  if (map === undefined) return undefined;
  const out: { name: string; value: string }[] = [];
  let ok = true;
  for (const [name, v] of Object.entries(map)) {
    const s = readString(v, at(where, name), problems);
    if (s === undefined) ok = false;
    else out.push({ name, value: s });
  }
  return ok ? out : undefined;
}

/** The same object without its undefined fields, so specs compare and print cleanly. */
export function defined<T extends object>(value: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = v;
  return out as T;
}
