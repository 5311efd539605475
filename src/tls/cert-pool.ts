// A piscina pool that makes certificates on worker threads (workers/cert-task.ts), and the one
// routine both `npm run certs` and the tests use to fill a directory: a CA (reused when present)
// and leaf certificates, written as NAME.crt / NAME.key with keys readable by the owner only.

import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { CertTask } from '../../workers/cert-task.js';
import type { CaRequest, KeyPairPem, LeafRequest } from './generate.js';

/**
 * The built task file. From dist/src/tls/ it is two levels up; when this module runs from source
 * (tests), the built copy under dist/ is used: worker threads cannot load .ts files.
 */
function taskFile(): string {
  for (const relative of ['../../workers/cert-task.js', '../../dist/workers/cert-task.js']) {
    const path = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error('workers/cert-task.js is not built: run `npx tsc -p tsconfig.json` first');
}

export class CertPool {
  readonly #pool: Piscina<CertTask, KeyPairPem>;

  /** `threads` defaults to every core: key generation is the whole job. */
  constructor(threads = availableParallelism()) {
    this.#pool = new Piscina({
      filename: taskFile(),
      minThreads: 0,
      maxThreads: Math.max(1, threads),
      idleTimeout: 1000,
      // The task is built JavaScript: threads need none of the parent's loader flags (a test
      // runner's TypeScript and coverage hooks would cost each thread seconds to start).
      execArgv: [],
    });
  }

  ca(request: CaRequest = {}): Promise<KeyPairPem> {
    return this.#pool.run({ kind: 'ca', ...request });
  }

  leaf(request: LeafRequest): Promise<KeyPairPem> {
    return this.#pool.run({ kind: 'leaf', ...request });
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}

/** Where one generated pair was written. */
export interface WrittenPair {
  readonly name: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface CertSet {
  readonly ca: WrittenPair & { readonly created: boolean };
  readonly leaves: WrittenPair[];
}

/** Key files: owner read/write only. */
const KEY_MODE = 0o600;

/**
 * Write `dir`/ca.crt + ca.key (kept when both exist, so clients that trust it keep working) and,
 * for each entry of `leaves`, `dir`/<file>.crt + <file>.key for its names. Leaves are made in
 * parallel on the pool.
 */
export async function writeCertSet(
  pool: CertPool,
  dir: string,
  leaves: readonly { readonly file: string; readonly names: readonly string[] }[],
): Promise<CertSet> {
  mkdirSync(dir, { recursive: true });
  const caCert = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  let ca: KeyPairPem;
  let created = false;
  if (existsSync(caCert) && existsSync(caKey)) {
    ca = { certPem: readFileSync(caCert, 'utf8'), keyPem: readFileSync(caKey, 'utf8') };
  } else {
    ca = await pool.ca();
    writePair(caCert, caKey, ca);
    created = true;
  }
  const made = await Promise.all(leaves.map((leaf) => pool.leaf({ ca, names: leaf.names })));
  const written = leaves.map((leaf, i) => {
    const certFile = join(dir, `${leaf.file}.crt`);
    const keyFile = join(dir, `${leaf.file}.key`);
    writePair(certFile, keyFile, made[i]!);
    return { name: leaf.file, certFile, keyFile };
  });
  return { ca: { name: 'ca', certFile: caCert, keyFile: caKey, created }, leaves: written };
}

function writePair(certFile: string, keyFile: string, pair: KeyPairPem): void {
  writeFileSync(certFile, pair.certPem);
  // `mode` only applies to a new file: tighten an existing one before the new key goes in.
  if (existsSync(keyFile)) chmodSync(keyFile, KEY_MODE);
  writeFileSync(keyFile, pair.keyPem, { mode: KEY_MODE });
}
