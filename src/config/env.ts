// Builds the Config from SLUICE_* environment variables by applying the table in variables.ts.
// Every bad variable is reported (not just the first) so one `sluice --check` shows them all;
// unknown SLUICE_* names are warnings with a suggestion, since a typo silently keeps a default.

import type { Config } from './types.js';
import type { Issue } from './parsers.js';
import { closest } from './suggest.js';
import { CROSS_CHECKS, VARIABLE_NAMES, VARIABLE_SPECS, type VariableSpec } from './variables.js';

/** Long values (a 1000-entry upstream list) are cut in messages; the item number still points. */
const SHOWN_VALUE_CHARS = 120;

/** One rejected variable, or one rejected item of a list variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly variable: string;
  readonly value: string;
  readonly expected: string;
  /** 1-based item of a comma-separated list, when the error is about one item. */
  readonly item: number | undefined;

  constructor(variable: string, issue: Issue) {
    super(describe(variable, issue));
    this.variable = variable;
    this.value = issue.value;
    this.expected = issue.expected;
    this.item = issue.item;
  }
}

/** SLUICE_WORKERS="abc": expected an integer from 1 to 64, or "auto" */
function describe(variable: string, issue: Issue): string {
  const shown =
    issue.value.length > SHOWN_VALUE_CHARS ? `${issue.value.slice(0, SHOWN_VALUE_CHARS)}…` : issue.value;
  const where = issue.item === undefined ? '' : ` (item ${issue.item})`;
  return `${variable}=${JSON.stringify(shown)}${where}: expected ${issue.expected}`;
}

export type EnvResult =
  | { readonly ok: true; readonly config: Config; readonly warnings: string[] }
  | { readonly ok: false; readonly errors: ConfigError[]; readonly warnings: string[] };

export function parseEnv(env: NodeJS.ProcessEnv): EnvResult {
  const config: Partial<Config> = {};
  const errors: ConfigError[] = [];
  for (const spec of VARIABLE_SPECS) readVariable(spec, env, config, errors);
  for (const check of CROSS_CHECKS) {
    const found = check(config);
    if (found !== null) errors.push(new ConfigError(found.variable, found.issue));
  }
  const warnings = unknownVariableWarnings(env);
  if (errors.length > 0) return { ok: false, errors, warnings };
  // Complete: VARIABLE_SPECS has one entry per Config field (enforced by its type) and none failed.
  return { ok: true, config: config as Config, warnings };
}

/** Unset and blank mean "use the default", as with `FOO=` in a compose file. */
function readVariable<K extends keyof Config>(
  spec: VariableSpec<K>,
  env: NodeJS.ProcessEnv,
  target: Partial<Config>,
  errors: ConfigError[],
): void {
  const given = env[spec.name]?.trim() ?? '';
  const parsed = spec.parse(given === '' ? spec.default : given);
  if (parsed.ok) target[spec.key] = parsed.value;
  else for (const issue of parsed.issues) errors.push(new ConfigError(spec.name, issue));
}

/** Names that look like ours but are not: case slips (sluice_workers) included. */
function unknownVariableWarnings(env: NodeJS.ProcessEnv): string[] {
  const warnings: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!/^sluice_/i.test(name) || VARIABLE_NAMES.has(name)) continue;
    const suggestion = closest(name.toUpperCase(), VARIABLE_NAMES);
    const hint = suggestion === undefined ? '' : ` (did you mean ${suggestion}?)`;
    warnings.push(`${name} is not a Sluice variable and is ignored${hint}`);
  }
  return warnings;
}
