// The development certificate generator (src/tls/generate.ts on the piscina pool of
// src/tls/cert-pool.ts) and `npm run certs` (src/tls/certs-cli.ts): what the certificates contain,
// that OpenSSL (through node:tls) accepts them, key file modes, CA reuse, and the CLI's output.

import t from 'tap';
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { CertPool, writeCertSet } from '../../src/tls/cert-pool.js';
import { ensureBuilt } from '../helpers/sluice.js';

await ensureBuilt();
const dir = mkdtempSync(join(tmpdir(), 'sluice-gen-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const pool = new CertPool();
t.teardown(() => pool.close());

const first = await writeCertSet(pool, dir, [
  { file: 'localhost', names: ['localhost', '127.0.0.1', '::1'] },
  { file: '_wildcard.w.test', names: ['*.w.test'] },
]);
const caCert = new X509Certificate(readFileSync(first.ca.certFile));
const leafCert = new X509Certificate(readFileSync(first.leaves[0]!.certFile));

t.test('the CA is a CA, self-signed, RSA 2048', async (t) => {
  t.ok(first.ca.created);
  t.ok(caCert.ca, 'basicConstraints CA:TRUE');
  t.ok(caCert.verify(caCert.publicKey), 'self-signed');
  t.equal(caCert.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
  t.match(caCert.subject, /CN=Sluice Development CA/);
});

t.test('a leaf is signed by the CA, for its names, for server authentication', async (t) => {
  t.notOk(leafCert.ca);
  t.ok(leafCert.checkIssued(caCert), 'issued by the CA');
  t.ok(leafCert.verify(caCert.publicKey), 'signature verifies with the CA key');
  t.equal(leafCert.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
  t.match(leafCert.subject, /CN=localhost/);
  t.same(leafCert.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'extendedKeyUsage serverAuth only');
  const key = createPrivateKey(readFileSync(first.leaves[0]!.keyFile));
  t.ok(leafCert.checkPrivateKey(key), 'the key file belongs to the certificate');
  const days = (Date.parse(leafCert.validTo) - Date.now()) / 86_400_000;
  t.ok(days > 820 && days <= 825, `valid for about 825 days (${days.toFixed(1)})`);
  t.match(leafCert.serialNumber, /^[0-7][0-9A-F]{31}$/, 'a positive 128-bit serial');
});

t.test('keys are written mode 0600, certificates stay readable', async (t) => {
  for (const pair of [first.ca, ...first.leaves]) {
    t.equal(statSync(pair.keyFile).mode & 0o777, 0o600, `${pair.keyFile} is 0600`);
    t.ok(statSync(pair.certFile).mode & 0o400, `${pair.certFile} is readable`);
  }
});

t.test('a node:tls client trusting the CA accepts the leaves, wildcard included', async (t) => {
  const wild = first.leaves[1]!;
  const server = tls.createServer({ cert: readFileSync(wild.certFile), key: readFileSync(wild.keyFile) }, (socket) => socket.end('hi'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const { port } = server.address() as net.AddressInfo;
  const authorized = await new Promise<boolean>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'api.w.test', ca: readFileSync(first.ca.certFile) }, () => {
      resolve(socket.authorized);
      socket.destroy();
    });
    socket.on('error', reject);
  });
  t.ok(authorized, 'api.w.test verifies against *.w.test');
  await t.rejects(
    new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, servername: 'a.b.w.test', ca: readFileSync(first.ca.certFile) }, () => resolve(socket.destroy()));
      socket.on('error', reject);
    }),
    /altnames|does not match/i,
    'a wildcard covers one label only',
  );
});

t.test('a second run reuses the CA and tightens an existing key file', async (t) => {
  const caBefore = readFileSync(first.ca.certFile, 'utf8');
  chmodSync(first.leaves[0]!.keyFile, 0o644);
  const again = await writeCertSet(pool, dir, [{ file: 'localhost', names: ['localhost'] }]);
  t.notOk(again.ca.created);
  t.equal(readFileSync(again.ca.certFile, 'utf8'), caBefore, 'the CA is unchanged');
  const leaf = new X509Certificate(readFileSync(again.leaves[0]!.certFile));
  t.ok(leaf.verify(caCert.publicKey), 'the new leaf is signed by the same CA');
  t.equal(statSync(again.leaves[0]!.keyFile).mode & 0o777, 0o600);
});

const CERTS_CLI = fileURLToPath(new URL('../../dist/src/tls/certs-cli.js', import.meta.url));
function certsCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // Only PATH: the test runner's NODE_OPTIONS (TypeScript and coverage hooks) would slow the child.
    const env = { PATH: process.env.PATH };
    execFile(process.execPath, [CERTS_CLI, ...args], { encoding: 'utf8', timeout: 60_000, env }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

t.test('npm run certs: writes the set and says how to trust the CA', async (t) => {
  const out = join(dir, 'cli');
  const fresh = await certsCli(['--dir', out, '--help']);
  t.match(fresh.stdout, /^Usage: npm run certs/);
  // A CA already in the directory is reused (and saves this test a key).
  mkdirSync(out);
  copyFileSync(first.ca.certFile, join(out, 'ca.crt'));
  copyFileSync(first.ca.keyFile, join(out, 'ca.key'));
  const r = await certsCli(['--dir', out, 'api.test', '*.shop.test', '10.9.8.7']);
  t.equal(r.code, 0, r.stderr);
  for (const f of ['ca.crt', 'ca.key', 'localhost.crt', 'localhost.key', 'api.test.crt', 'api.test.key', '_wildcard.shop.test.crt']) {
    t.ok(existsSync(join(out, f)), `${f} written`);
  }
  t.match(r.stdout, /Reused the local CA: .*ca\.crt/);
  t.match(r.stdout, new RegExp(`curl --cacert ${out}/ca\\.crt https://localhost:8443/`));
  t.match(r.stdout, /--resolve api\.test:8443:127\.0\.0\.1 https:\/\/api\.test:8443\//);
  t.match(r.stdout, /SLUICE_TLS_CERTS_DIR=/);
  const fallback = new X509Certificate(readFileSync(join(out, 'localhost.crt')));
  t.match(fallback.subjectAltName, /IP Address:10\.9\.8\.7/, 'IP names go on the default certificate (no SNI for IPs)');
  t.equal(statSync(join(out, 'api.test.key')).mode & 0o777, 0o600);

  const bad = await certsCli(['--dir', out, 'not a name']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /"not a name" is not a host name/);
});

t.test('an existing certificate file is replaced, never appended to', async (t) => {
  const sub = join(dir, 'replace');
  mkdirSync(sub);
  // Reuse the CA made above: only the leaf needs a new key.
  copyFileSync(first.ca.certFile, join(sub, 'ca.crt'));
  copyFileSync(first.ca.keyFile, join(sub, 'ca.key'));
  writeFileSync(join(sub, 'x.crt'), 'old');
  await writeCertSet(pool, sub, [{ file: 'x', names: ['x.test'] }]);
  t.match(readFileSync(join(sub, 'x.crt'), 'utf8'), /^-----BEGIN CERTIFICATE-----/);
});
