// Bad TLS input stops `sluice --check` and start-up (exit 1) with a message naming the file; an
// expired certificate starts with a loud warning; an encrypted key works with its passphrase.
// --check runs in-process through the CLI's run() (the same code, without a process per case);
// start-up runs the built CLI (dist/src/cli.js) as a child process, as an operator would.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../src/cli.js';
import { BUILT_CLI, freePort, runCli, startSluice } from '../helpers/sluice.js';
import { startBackend } from '../helpers/backends.js';
import { handshake, httpsRequest, makeCerts } from './fixtures/tls.js';

const DAY = 86_400_000;
const certs = await makeCerts(t, ['ca'], {
  good: { names: ['localhost', '127.0.0.1'] },
  other: { names: ['localhost'] },
  expired: { names: ['localhost', '127.0.0.1'], notBefore: new Date(Date.now() - 30 * DAY), notAfter: new Date(Date.now() - DAY) },
});
const good = certs.leaves.good!;
const other = certs.leaves.other!;
const expired = certs.leaves.expired!;
const file = (name: string, text: string): string => {
  const path = join(certs.dir, name);
  writeFileSync(path, text);
  return path;
};
const garbledCert = file('garbled.crt', '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
const notPem = file('not-pem.crt', 'this is not a certificate\n');
const garbledKey = file('garbled.key', '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n');
const encryptedKey = file(
  'encrypted.key',
  createPrivateKey(good.pem.keyPem).export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 's3cret-phrase' }) as string,
);
// A certificates directory with one pair whose key belongs to another certificate.
const badDir = join(certs.dir, 'bad-dir');
mkdirSync(badDir);
copyFileSync(good.cert, join(badDir, 'api.test.crt'));
copyFileSync(other.key, join(badDir, 'api.test.key'));

const tlsPort = await freePort();
const base = { SLUICE_LISTEN: '127.0.0.1:1', SLUICE_UPSTREAMS: 'http://127.0.0.1:1', SLUICE_TLS_LISTEN: `127.0.0.1:${tlsPort}`, SLUICE_ADMIN_LISTEN: 'off' };
const withPair = (cert: string, key: string): Record<string, string> => ({ ...base, SLUICE_TLS_CERT: cert, SLUICE_TLS_KEY: key });
/** For a Sluice that really starts: startSluice chooses the plain port and the upstreams. */
const serving = (cert: string, key: string, port: number): Record<string, string> => ({
  SLUICE_TLS_LISTEN: `127.0.0.1:${port}`,
  SLUICE_TLS_CERT: cert,
  SLUICE_TLS_KEY: key,
  SLUICE_ADMIN_LISTEN: 'off',
  SLUICE_HEALTH_CHECK: 'off',
});

async function check(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await run(['--check'], env, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } });
  return { code, stdout, stderr };
}

const refused: [string, Record<string, string>, RegExp[]][] = [
  ['missing certificate file', withPair(join(certs.dir, 'nope.crt'), good.key), [/SLUICE_TLS_CERT .*nope\.crt: cannot read \(no such file or directory\)/]],
  ['missing key file', withPair(good.cert, join(certs.dir, 'nope.key')), [/nope\.key: cannot read \(no such file or directory\)/]],
  ['key of another certificate', withPair(good.cert, other.key), [new RegExp(`${escape(other.key)}: this key does not match the certificate ${escape(good.cert)}`)]],
  ['unreadable PEM certificate', withPair(garbledCert, good.key), [/garbled\.crt: unreadable PEM certificate/]],
  ['certificate that is not PEM', withPair(notPem, good.key), [/not-pem\.crt: not a PEM certificate/]],
  ['unreadable PEM key', withPair(good.cert, garbledKey), [/garbled\.key: unreadable PEM private key/]],
  ['encrypted key without passphrase', withPair(good.cert, encryptedKey), [/encrypted\.key: the key is encrypted; set SLUICE_TLS_KEY_PASSPHRASE/]],
  [
    'encrypted key with the wrong passphrase',
    { ...withPair(good.cert, encryptedKey), SLUICE_TLS_KEY_PASSPHRASE: 'wrong' },
    [/encrypted\.key: cannot decrypt the key with SLUICE_TLS_KEY_PASSPHRASE/],
  ],
  ['missing certificates directory', { ...withPair(good.cert, good.key), SLUICE_TLS_CERTS_DIR: join(certs.dir, 'no-dir') }, [/SLUICE_TLS_CERTS_DIR .*no-dir: cannot read the directory/]],
  ['mismatched pair in the certificates directory', { ...withPair(good.cert, good.key), SLUICE_TLS_CERTS_DIR: badDir }, [/bad-dir\/api\.test\.key: this key does not match the certificate .*bad-dir\/api\.test\.crt/]],
  ['TLS listener without certificate or key', base, [/SLUICE_TLS_CERT is required/, /SLUICE_TLS_KEY is required/]],
  ['redirect without a TLS listener', { SLUICE_UPSTREAMS: 'http://127.0.0.1:1', SLUICE_REDIRECT_HTTPS: '1' }, [/SLUICE_REDIRECT_HTTPS=1 needs SLUICE_TLS_LISTEN/]],
  ['TLS on the plain port', { ...withPair(good.cert, good.key), SLUICE_LISTEN: `127.0.0.1:${tlsPort}` }, [/same|port of SLUICE_LISTEN/]],
  ['cipher list nothing matches', { ...withPair(good.cert, good.key), SLUICE_TLS_CIPHERS: 'NO-SUCH-CIPHER' }, [/SLUICE_TLS_CIPHERS="NO-SUCH-CIPHER": no cipher/]],
  ['missing upstream CA file', { SLUICE_UPSTREAMS: 'https://127.0.0.1:1', SLUICE_UPSTREAM_CA: join(certs.dir, 'no-ca.pem') }, [/SLUICE_UPSTREAM_CA .*no-ca\.pem: cannot read/]],
  ['upstream CA file without a certificate', { SLUICE_UPSTREAMS: 'https://127.0.0.1:1', SLUICE_UPSTREAM_CA: good.key }, [/SLUICE_UPSTREAM_CA .*good\.key: no PEM certificate in it/]],
];

for (const [name, env, messages] of refused) {
  t.test(`--check refuses: ${name}`, async (t) => {
    const r = await check(env);
    t.equal(r.code, 1, 'exit 1');
    for (const m of messages) t.match(r.stderr, m);
    t.match(r.stderr, /configuration has \d+ errors?/);
    t.equal(r.stdout, '', 'nothing on stdout');
  });
}

t.test('the built CLI: start-up and --check stop on a bad pair, naming the file, before anything listens', async (t) => {
  const r = runCli(withPair(good.cert, other.key));
  t.equal(r.code, 1);
  t.match(r.stderr, new RegExp(`${escape(other.key)}: this key does not match`));
  t.notMatch(r.stdout, /sluice is listening/);
  const checked = spawnSync(process.execPath, [BUILT_CLI, '--check'], { env: { PATH: process.env.PATH, ...withPair(garbledCert, good.key) }, encoding: 'utf8' });
  t.equal(checked.status, 1);
  t.match(checked.stderr, /garbled\.crt: unreadable PEM certificate/);
});

t.test('--check accepts good files and says what TLS will serve', async (t) => {
  const r = await check({ ...withPair(good.cert, good.key), SLUICE_HSTS_MAX_AGE: '31536000' });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, new RegExp(`sluice: tls 127\\.0\\.0\\.1:${tlsPort}, default certificate ${escape(good.cert)} \\(localhost\\), 0 SNI certificates`));
  t.match(r.stdout, /HSTS max-age 31536000/);
  const insecure = await check({ SLUICE_UPSTREAMS: 'https://127.0.0.1:1', SLUICE_UPSTREAM_INSECURE: '1' });
  t.equal(insecure.code, 0);
  t.match(insecure.stderr, /warning: SLUICE_UPSTREAM_INSECURE=1: certificates of https:\/\/ upstreams are NOT verified/);
});

t.test('an expired certificate: --check warns, start-up warns loudly and serves', async (t) => {
  const r = await check(withPair(expired.cert, expired.key));
  t.equal(r.code, 0);
  t.match(r.stderr, new RegExp(`warning: CERTIFICATE EXPIRED: ${escape(expired.cert)} expired on`));
  const backend = await startBackend(t);
  const port = await freePort();
  const sluice = await startSluice(t, {
    upstreams: [backend.url],
    env: serving(expired.cert, expired.key, port),
  });
  const warning = sluice.logs().find((l) => l.level === 40 && l.msg.startsWith('CERTIFICATE EXPIRED'));
  t.ok(warning, 'a warning log line at start');
  t.match(warning?.msg, expired.cert);
  const shown = await handshake(port, { ca: certs.cas.ca!.pem.certPem });
  t.equal(shown.authorizationError, 'CERT_HAS_EXPIRED', 'clients see the expired certificate (and may refuse it)');
});

t.test('an encrypted key is served with SLUICE_TLS_KEY_PASSPHRASE', async (t) => {
  const backend = await startBackend(t);
  const port = await freePort();
  await startSluice(t, {
    upstreams: [backend.url],
    env: { ...serving(good.cert, encryptedKey, port), SLUICE_TLS_KEY_PASSPHRASE: 's3cret-phrase' },
  });
  const res = await httpsRequest(port, { ca: certs.cas.ca!.pem.certPem, path: '/encrypted' });
  t.equal(res.status, 200);
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
