// `npm run certs [-- [--dir DIR] NAME...]`: a local development CA and leaf certificates, made on a
// piscina pool (one thread per core). Always a "localhost" leaf (localhost, 127.0.0.1, ::1), the
// default certificate; one more leaf per NAME, for SNI through SLUICE_TLS_CERTS_DIR. An existing
// CA in DIR is reused, so clients that already trust it keep working.

import { isIP } from 'node:net';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CertPool, writeCertSet } from './cert-pool.js';

const USAGE = 'Usage: npm run certs -- [--dir DIR] [NAME ...]   (NAME: host name, *.wildcard or IP address)';
// Built file: dist/src/tls/certs-cli.js → the repository's certs/.
const DEFAULT_DIR = fileURLToPath(new URL('../../../certs/', import.meta.url));
const HOST = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

async function main(argv: string[]): Promise<number> {
  let dir = DEFAULT_DIR;
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (arg === '--dir') {
      const value = argv[++i];
      if (value === undefined) return usage('--dir needs a directory');
      dir = resolve(value);
    } else if (arg.startsWith('-')) {
      return usage(`unknown option ${arg}`);
    } else if (HOST.test(arg) || isIP(arg) !== 0) {
      if (!names.includes(arg.toLowerCase())) names.push(arg.toLowerCase());
    } else {
      return usage(`${JSON.stringify(arg)} is not a host name, *.wildcard or IP address`);
    }
  }
  // IP addresses go on the default certificate: a client connecting to an IP sends no server name.
  const fallback = ['localhost', '127.0.0.1', '::1'];
  for (const name of names) if (isIP(name) !== 0 && !fallback.includes(name)) fallback.push(name);
  const leaves = [{ file: 'localhost', names: fallback }];
  for (const name of names) {
    if (name !== 'localhost' && isIP(name) === 0) leaves.push({ file: name.replace(/^\*\./, '_wildcard.'), names: [name] });
  }

  const started = Date.now();
  const pool = new CertPool();
  let set;
  try {
    set = await writeCertSet(pool, dir, leaves);
  } finally {
    await pool.close();
  }
  const show = (file: string): string => {
    const near = relative(process.cwd(), file);
    return near === '' || near.startsWith('..') ? file : near;
  };
  const out: string[] = [];
  out.push(`${set.ca.created ? 'Created' : 'Reused'} the local CA: ${show(set.ca.certFile)} (its key: ${show(set.ca.keyFile)}, keep it private)`);
  set.leaves.forEach((leaf, i) => out.push(`Wrote ${show(leaf.certFile)} + ${show(leaf.keyFile)} for ${leaves[i]!.names.join(', ')}`));
  out.push(`(${set.leaves.length + (set.ca.created ? 1 : 0)} certificate(s) in ${Date.now() - started} ms; keys are mode 0600)`);
  out.push('');
  out.push('Serve them:');
  out.push(`  SLUICE_TLS_LISTEN=:8443 SLUICE_TLS_CERT=${show(set.leaves[0]!.certFile)} SLUICE_TLS_KEY=${show(set.leaves[0]!.keyFile)} \\`);
  out.push(`  SLUICE_TLS_CERTS_DIR=${show(dir)} npm start`);
  out.push('Trust the CA for one command (curl):');
  out.push(`  curl --cacert ${show(set.ca.certFile)} https://localhost:8443/`);
  const sni = names.find((n) => n !== 'localhost' && isIP(n) === 0 && !n.startsWith('*.'));
  if (sni !== undefined) out.push(`  curl --cacert ${show(set.ca.certFile)} --resolve ${sni}:8443:127.0.0.1 https://${sni}:8443/`);
  out.push(`Node clients: NODE_EXTRA_CA_CERTS=${show(set.ca.certFile)}. Browsers: import it as an authority (development machines only).`);
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

function usage(problem: string): number {
  process.stderr.write(`certs: ${problem}\n${USAGE}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`certs: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
