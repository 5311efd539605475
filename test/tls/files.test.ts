// src/tls/files.ts in-process: how SLUICE_TLS_CERTS_DIR becomes (files, server names) — SAN DNS
// names and wildcards, CN fallback, CA certificates and key files skipped, a name claimed twice —
// the validity-window warnings on a given clock, and the TLS variables' parsers.

import t from 'tap';
import { execFileSync } from 'node:child_process';
import { copyFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnv } from '../../src/config/env.js';
import type { Config } from '../../src/config/types.js';
import { checkTls } from '../../src/tls/files.js';
import { makeCerts } from './fixtures/tls.js';

const DAY = 86_400_000;
const certs = await makeCerts(t, ['ca'], {
  fallback: { names: ['localhost', '127.0.0.1'], notAfter: new Date(Date.now() + 3 * DAY) },
  'a.test': { names: ['a.test'], dir: 'sni' },
  dup: { names: ['a.test', 'z.test'], dir: 'sni' },
  multi: { names: ['x.test', '*.x.test', '10.0.0.1'], dir: 'sni' },
  pemstyle: { names: ['pem.test'], dir: 'sni' },
});
const sni = join(certs.dir, 'sni');
// NAME.pem + NAME.key pairs too.
renameSync(join(sni, 'pemstyle.crt'), join(sni, 'pemstyle.pem'));
// The CA beside its leaves (as `npm run certs` leaves it) is not served.
copyFileSync(certs.cas.ca!.cert, join(sni, 'ca.crt'));
copyFileSync(certs.cas.ca!.key, join(sni, 'ca.key'));
// A certificate without its key, and a key-only .pem (Let's Encrypt's privkey.pem style).
copyFileSync(certs.leaves['a.test']!.cert, join(sni, 'lonely.crt'));
copyFileSync(certs.leaves['a.test']!.key, join(sni, 'privkey.pem'));
// A certificate with no subjectAltName at all: its CN names it (openssl x509 -req adds no SAN).
const csr = join(certs.dir, 'cn.csr');
execFileSync('openssl', ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(sni, 'cn.key'), '-subj', '/CN=CN.Test', '-out', csr], { stdio: 'ignore' });
execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', certs.cas.ca!.cert, '-CAkey', certs.cas.ca!.key, '-days', '30', '-out', join(sni, 'cn.crt')], { stdio: 'ignore' });

function config(env: Record<string, string>): Config {
  const parsed = parseEnv({ SLUICE_UPSTREAMS: 'http://127.0.0.1:9', ...env });
  if (!parsed.ok) throw new Error(parsed.errors.map((e) => e.message).join('; '));
  return parsed.config;
}
const tlsEnv = {
  SLUICE_LISTEN: '127.0.0.1:8080',
  SLUICE_TLS_LISTEN: '127.0.0.1:8443',
  SLUICE_TLS_CERT: certs.leaves.fallback!.cert,
  SLUICE_TLS_KEY: certs.leaves.fallback!.key,
};

t.test('SLUICE_TLS_CERTS_DIR: names from SAN, wildcards, CN fallback; skips and clashes reported', async (t) => {
  const report = checkTls(config({ ...tlsEnv, SLUICE_TLS_CERTS_DIR: sni }));
  t.same(report.errors, []);
  const served = Object.fromEntries(report.files!.sni.map((p) => [p.certFile.slice(sni.length + 1), p.names]));
  t.same(served, {
    'a.test.crt': ['a.test'],
    'cn.crt': ['cn.test'],
    'dup.crt': ['z.test'],
    'multi.crt': ['x.test', '*.x.test'],
    'pemstyle.pem': ['pem.test'],
  });
  t.equal(report.warnings.length, 3, report.warnings.join('\n'));
  t.ok(report.warnings.some((w) => /fallback\.crt expires in 3 day/.test(w)));
  t.ok(report.warnings.some((w) => /dup\.crt: a\.test is also in .*a\.test\.crt, which serves it/.test(w)));
  t.ok(report.warnings.some((w) => /lonely\.crt: skipped, no lonely\.key beside it/.test(w)));
  t.notOk(report.warnings.some((w) => /privkey\.pem|ca\.crt/.test(w)), 'key-only .pem and the CA are skipped quietly');
  t.equal(report.files!.fallback.certFile, tlsEnv.SLUICE_TLS_CERT);
  t.same(report.files!.fallback.names, ['localhost']);
});

t.test('validity: soon expiring, expired, not yet valid (warnings, never errors)', async (t) => {
  const c = config(tlsEnv);
  const soon = checkTls(c);
  t.same(soon.errors, []);
  t.match(soon.warnings.join('\n'), /fallback\.crt expires in 3 day\(s\)/);
  const later = checkTls(c, Date.now() + 10 * DAY);
  t.same(later.errors, []);
  t.match(later.warnings.join('\n'), /^CERTIFICATE EXPIRED: .*fallback\.crt expired on \d{4}-/m);
  t.ok(later.files, 'an expired certificate still starts');
  const earlier = checkTls(c, Date.now() - 2 * DAY);
  t.match(earlier.warnings.join('\n'), /CERTIFICATE NOT YET VALID: .*fallback\.crt/);
});

t.test('TLS settings without a TLS listener are warned about', async (t) => {
  const report = checkTls(config({ SLUICE_TLS_CERT: '/x.crt', SLUICE_HSTS_MAX_AGE: '60' }));
  t.same(report.errors, []);
  t.match(report.warnings, [/SLUICE_TLS_CERT is set but SLUICE_TLS_LISTEN is not/, /SLUICE_HSTS_MAX_AGE is set/]);
  t.equal(report.files, null);
});

t.test('SLUICE_LISTEN=off: TLS alone is fine; a redirect from the missing plain listener is warned about', async (t) => {
  const alone = checkTls(config({ ...tlsEnv, SLUICE_LISTEN: 'off' }));
  t.same(alone.errors, []);
  t.notMatch(alone.warnings.join('\n'), /REDIRECT/);
  const redirect = checkTls(config({ ...tlsEnv, SLUICE_LISTEN: 'off', SLUICE_REDIRECT_HTTPS: '1' }));
  t.same(redirect.errors, []);
  t.match(redirect.warnings, [/SLUICE_REDIRECT_HTTPS=1 with SLUICE_LISTEN=off/]);
});

t.test('upstream CA: checked, and warned about when unused', async (t) => {
  const unused = checkTls(config({ SLUICE_UPSTREAM_CA: certs.cas.ca!.cert }));
  t.same(unused.errors, []);
  t.match(unused.warnings, [/SLUICE_UPSTREAM_CA is set but no upstream is https:\/\//]);
  const bundle = join(certs.dir, 'bundle.pem');
  writeFileSync(bundle, `${certs.cas.ca!.pem.certPem}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`);
  const broken = checkTls(config({ SLUICE_UPSTREAMS: 'https://127.0.0.1:9', SLUICE_UPSTREAM_CA: bundle }));
  t.match(broken.errors, [/SLUICE_UPSTREAM_CA .*bundle\.pem: certificate 2 is unreadable PEM/]);
});

t.test('the TLS variables parse and refuse as documented', async (t) => {
  const c = config({ SLUICE_TLS_LISTEN: ':8443', SLUICE_REDIRECT_HTTPS: 'TRUE', SLUICE_UPSTREAM_INSECURE: 'off', SLUICE_HSTS_MAX_AGE: '63072000' });
  t.same(c.tlsListen, { host: '0.0.0.0', port: 8443 });
  t.equal(c.redirectHttps, true);
  t.equal(c.upstreamInsecure, false);
  t.equal(c.hstsMaxAge, 63_072_000);
  t.equal(config({}).tlsListen, null, 'no TLS listener by default');
  t.match(config({}).tlsCiphers, /^ECDHE-ECDSA-AES128-GCM-SHA256:/);
  const bad = parseEnv({
    SLUICE_TLS_LISTEN: 'nowhere',
    SLUICE_REDIRECT_HTTPS: 'maybe',
    SLUICE_HSTS_MAX_AGE: '-1',
    SLUICE_TLS_CIPHERS: 'AES;rm -rf',
    SLUICE_TLS_CERT: 'a\u0001b',
  });
  t.notOk(bad.ok);
  const named = bad.ok ? [] : bad.errors.map((e) => e.variable).sort();
  t.same(named, ['SLUICE_HSTS_MAX_AGE', 'SLUICE_REDIRECT_HTTPS', 'SLUICE_TLS_CERT', 'SLUICE_TLS_CIPHERS', 'SLUICE_TLS_LISTEN']);
});
