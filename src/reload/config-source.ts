// Where the configuration comes from: the process environment, with SLUICE_ENV_FILE's variables
// laid over it. Read at start and again on every SIGHUP.
//
// Under systemd, EnvironmentFile= has already copied the file into the process environment at
// start, and that copy never changes. So the file must win over the environment (or an edited
// value would never apply), and a variable deleted from the file must not fall back to its stale
// start-time copy: every name the file set when it was first read is dropped from the base
// environment, and a deleted variable returns to its default.

import type { ResolvedConfig } from '../config/types.js';
import { loadConfig, type LoadResult } from '../config/load.js';
import { readEnvFile } from './env-file.js';

export type ConfigLoad =
  | { readonly ok: true; readonly config: ResolvedConfig; readonly warnings: string[] }
  | { readonly ok: false; readonly errors: string[]; readonly warnings: string[] };

export class ConfigSource {
  /** Absolute path of the env file; '' when there is none. */
  readonly path: string;
  readonly #env: Readonly<Record<string, string | undefined>>;
  /** Names the file set the first time it was read successfully. */
  #fileNames: ReadonlySet<string> | null = null;

  /** `env` is copied: later changes to process.env do not leak into reloads. */
  constructor(env: NodeJS.ProcessEnv, path: string) {
    this.#env = { ...env };
    this.path = path;
  }

  /** Read the file (when there is one), merge and validate, SLUICE_CONFIG included. Never throws. */
  async load(): Promise<ConfigLoad> {
    if (this.path === '') return parsed(await loadConfig(this.#env), []);
    const file = await readEnvFile(this.path);
    if (!file.ok) {
      return { ok: false, errors: file.errors.map((e) => (e.line > 0 ? `${this.path}:${e.line}: ${e.message}` : e.message)), warnings: [] };
    }
    const warnings = file.warnings.map((w) => `${this.path}:${w.line}: ${w.message}`);
    this.#fileNames ??= new Set(file.vars.keys());
    const env: Record<string, string | undefined> = {};
    for (const [name, value] of Object.entries(this.#env)) if (!this.#fileNames.has(name)) env[name] = value;
    for (const [name, value] of file.vars) env[name] = value;
    return parsed(await loadConfig(env), warnings);
  }
}

function parsed(result: LoadResult, fileWarnings: string[]): ConfigLoad {
  const warnings = [...fileWarnings, ...result.warnings];
  if (result.ok) return { ok: true, config: result.config, warnings };
  return { ok: false, errors: result.errors.map((e) => e.message), warnings };
}
