// Checks every TLS file the configuration names, the same way for `sluice --check`, for start-up
// (cli.ts, before any worker exists) and in each worker before it builds its SSLApp: missing or
// unreadable files, PEM that does not parse, keys that do not match their certificate or cannot be
// decrypted are errors; expired (or not yet valid, or soon expiring) certificates are warnings.
// Every message names the file. Also resolves SLUICE_TLS_CERTS_DIR into (files, server names).

import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import type { Config } from '../config/types.js';

/** One certificate and its key, and the server names (SNI) it is served for. */
export interface CertPair {
  readonly certFile: string;
  readonly keyFile: string;
  /** Lower-case DNS names from subjectAltName (wildcards as "*.example.com"), else the CN. */
  readonly names: readonly string[];
  readonly notAfter: Date;
}

export interface TlsFiles {
  /** SLUICE_TLS_CERT / SLUICE_TLS_KEY: for clients without a server name or with an unknown one. */
  readonly fallback: CertPair;
  /** From SLUICE_TLS_CERTS_DIR, in file-name order; each name appears in one pair only. */
  readonly sni: readonly CertPair[];
}

export interface TlsReport {
  readonly errors: string[];
  readonly warnings: string[];
  /** null when there is no TLS listener or an error was found. */
  readonly files: TlsFiles | null;
}

const DAY_MS = 86_400_000;
/** Warn this long before a certificate expires: time to renew without an outage. */
const EXPIRY_WARNING_DAYS = 14;

/** Check the TLS listener's files and the upstream TLS settings of `config` (at time `now`). */
export function checkTls(config: Config, now = Date.now()): TlsReport {
  const errors: string[] = [];
  const warnings: string[] = [];
  checkUpstreamTls(config, errors, warnings);
  if (config.tlsListen === null) {
    for (const [name, value] of [
      ['SLUICE_TLS_CERT', config.tlsCert],
      ['SLUICE_TLS_KEY', config.tlsKey],
      ['SLUICE_TLS_CERTS_DIR', config.tlsCertsDir],
    ] as const) {
      if (value !== '') warnings.push(`${name} is set but SLUICE_TLS_LISTEN is not: no TLS listener starts`);
    }
    if (config.hstsMaxAge > 0) warnings.push('SLUICE_HSTS_MAX_AGE is set but SLUICE_TLS_LISTEN is not: no response carries it');
    if (config.redirectHttps) errors.push('SLUICE_REDIRECT_HTTPS=1 needs SLUICE_TLS_LISTEN: there is no https:// listener to redirect to');
    return { errors, warnings, files: null };
  }
  if (config.listen === null && config.redirectHttps) warnings.push('SLUICE_REDIRECT_HTTPS=1 with SLUICE_LISTEN=off: there is no plain listener to redirect from');
  if (config.listen !== null && config.tlsListen.port === config.listen.port) {
    errors.push(`SLUICE_TLS_LISTEN uses port ${config.tlsListen.port}, the port of SLUICE_LISTEN: give TLS its own port`);
  }
  if (config.tlsCert === '') errors.push('SLUICE_TLS_CERT is required when SLUICE_TLS_LISTEN is set (a PEM certificate file)');
  if (config.tlsKey === '') errors.push('SLUICE_TLS_KEY is required when SLUICE_TLS_LISTEN is set (a PEM private key file)');
  try {
    tls.createSecureContext({ ciphers: config.tlsCiphers });
  } catch {
    errors.push(`SLUICE_TLS_CIPHERS=${JSON.stringify(config.tlsCiphers)}: no cipher in the list is known to OpenSSL`);
  }
  let fallback: CertPair | null = null;
  if (config.tlsCert !== '' && config.tlsKey !== '') {
    fallback = loadPair(config.tlsCert, config.tlsKey, config.tlsKeyPassphrase, now, errors, warnings, ['SLUICE_TLS_CERT', 'SLUICE_TLS_KEY']);
  }
  const sni = config.tlsCertsDir === '' ? [] : scanDirectory(config.tlsCertsDir, config.tlsKeyPassphrase, now, errors, warnings);
  if (errors.length > 0 || fallback === null) return { errors, warnings, files: null };
  return { errors, warnings, files: { fallback, sni } };
}

/** One line for `sluice --check`: what the TLS listener will serve. */
export function describeTls(config: Config, files: TlsFiles): string {
  const { host, port } = config.tlsListen!;
  const listen = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const sniNames = files.sni.reduce((n, pair) => n + pair.names.length, 0);
  const extras = [
    config.redirectHttps ? 'plain listener redirects to it' : '',
    config.hstsMaxAge > 0 ? `HSTS max-age ${config.hstsMaxAge}` : '',
  ].filter((s) => s !== '');
  return (
    `tls ${listen}, default certificate ${files.fallback.certFile} (${files.fallback.names.join(', ') || 'no DNS names'}), ` +
    `${files.sni.length} SNI certificate${files.sni.length === 1 ? '' : 's'} for ${sniNames} name${sniNames === 1 ? '' : 's'}` +
    (extras.length > 0 ? `, ${extras.join(', ')}` : '')
  );
}

function checkUpstreamTls(config: Config, errors: string[], warnings: string[]): void {
  const https = config.upstreams.some((u) => u.protocol === 'https:');
  if (config.upstreamInsecure) {
    warnings.push('SLUICE_UPSTREAM_INSECURE=1: certificates of https:// upstreams are NOT verified; anyone on the path can impersonate them');
  }
  if (config.upstreamCa === '') return;
  if (!https) warnings.push('SLUICE_UPSTREAM_CA is set but no upstream is https://: it is not used');
  if (config.upstreamInsecure) warnings.push('SLUICE_UPSTREAM_CA is ignored while SLUICE_UPSTREAM_INSECURE=1');
  const text = readText(config.upstreamCa, 'SLUICE_UPSTREAM_CA', errors);
  if (text === null) return;
  const blocks = pemBlocks(text, 'CERTIFICATE');
  if (blocks.length === 0) {
    errors.push(`SLUICE_UPSTREAM_CA ${config.upstreamCa}: no PEM certificate in it (expected "-----BEGIN CERTIFICATE-----" blocks)`);
    return;
  }
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch (err) {
      errors.push(`SLUICE_UPSTREAM_CA ${config.upstreamCa}: certificate ${i + 1} is unreadable PEM (${(err as Error).message})`);
    }
  });
}

/**
 * Every NAME.crt (or NAME.pem) with NAME.key beside it. CA certificates (the dev CA lives in the
 * same folder as its leaves) and .pem files without a certificate (keys, parameters) are skipped.
 */
function scanDirectory(dir: string, passphrase: string, now: number, errors: string[], warnings: string[]): CertPair[] {
  let entries: string[];
  try {
    entries = readdirSync(dir).sort();
  } catch (err) {
    errors.push(`SLUICE_TLS_CERTS_DIR ${dir}: cannot read the directory (${reason(err)})`);
    return [];
  }
  const pairs: CertPair[] = [];
  const owner = new Map<string, string>();
  const present = new Set(entries);
  for (const entry of entries) {
    const match = /^(.+)\.(crt|pem)$/.exec(entry);
    if (match === null) continue;
    const [, base, ext] = match as unknown as [string, string, string];
    const certFile = join(dir, entry);
    if (ext === 'pem' && present.has(`${base}.crt`)) continue;
    if (!present.has(`${base}.key`)) {
      if (ext === 'crt' || looksLikeCertificate(certFile)) warnings.push(`${certFile}: skipped, no ${base}.key beside it`);
      continue;
    }
    if (isCaCertificate(certFile)) continue;
    const pair = loadPair(certFile, join(dir, `${base}.key`), passphrase, now, errors, warnings, ['SLUICE_TLS_CERTS_DIR', 'SLUICE_TLS_CERTS_DIR']);
    if (pair === null) continue;
    const names: string[] = [];
    for (const name of pair.names) {
      const first = owner.get(name);
      if (first === undefined) {
        owner.set(name, certFile);
        names.push(name);
      } else {
        warnings.push(`${certFile}: ${name} is also in ${first}, which serves it`);
      }
    }
    if (pair.names.length === 0) warnings.push(`${certFile}: skipped, it names no DNS host (no subjectAltName DNS entry or CN)`);
    else if (names.length > 0) pairs.push({ ...pair, names });
  }
  return pairs;
}

function looksLikeCertificate(file: string): boolean {
  try {
    return readFileSync(file, 'latin1').includes('-----BEGIN CERTIFICATE-----');
  } catch {
    return false;
  }
}

function isCaCertificate(file: string): boolean {
  try {
    return new X509Certificate(readFileSync(file)).ca;
  } catch {
    return false; // loadPair reports it
  }
}

/** Read, parse and match one certificate and key; null (with errors added) when unusable. */
function loadPair(
  certFile: string,
  keyFile: string,
  passphrase: string,
  now: number,
  errors: string[],
  warnings: string[],
  [certVariable, keyVariable]: readonly [string, string],
): CertPair | null {
  const certText = readText(certFile, certVariable, errors);
  const keyText = readText(keyFile, keyVariable, errors);
  if (certText === null || keyText === null) return null;
  // uWS reads PEM only (a DER file would fail inside the worker with no file name).
  if (!certText.includes('-----BEGIN CERTIFICATE-----')) {
    errors.push(`${certVariable} ${certFile}: not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line)`);
    return null;
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certText);
  } catch (err) {
    errors.push(`${certVariable} ${certFile}: unreadable PEM certificate (${(err as Error).message})`);
    return null;
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(keyText)) {
    errors.push(`${keyVariable} ${keyFile}: not a PEM private key (no "-----BEGIN ... PRIVATE KEY-----" line)`);
    return null;
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyText, format: 'pem', passphrase: passphrase === '' ? undefined : passphrase });
  } catch (err) {
    const encrypted = /ENCRYPTED/.test(keyText);
    if (encrypted && passphrase === '') {
      errors.push(`${keyVariable} ${keyFile}: the key is encrypted; set SLUICE_TLS_KEY_PASSPHRASE`);
    } else if (encrypted) {
      errors.push(`${keyVariable} ${keyFile}: cannot decrypt the key with SLUICE_TLS_KEY_PASSPHRASE`);
    } else {
      errors.push(`${keyVariable} ${keyFile}: unreadable PEM private key (${(err as Error).message})`);
    }
    return null;
  }
  if (!cert.checkPrivateKey(key)) {
    errors.push(`${keyVariable} ${keyFile}: this key does not match the certificate ${certFile}`);
    return null;
  }
  const notBefore = Date.parse(cert.validFrom);
  const notAfter = Date.parse(cert.validTo);
  if (now > notAfter) {
    warnings.push(
      `CERTIFICATE EXPIRED: ${certFile} expired on ${new Date(notAfter).toISOString()}; clients that verify certificates will refuse it`,
    );
  } else if (now < notBefore) {
    warnings.push(`CERTIFICATE NOT YET VALID: ${certFile} is valid from ${new Date(notBefore).toISOString()}; clients will refuse it until then`);
  } else if (notAfter - now < EXPIRY_WARNING_DAYS * DAY_MS) {
    warnings.push(`${certFile} expires in ${Math.ceil((notAfter - now) / DAY_MS)} day(s), on ${new Date(notAfter).toISOString()}`);
  }
  return { certFile, keyFile, names: serverNames(cert), notAfter: new Date(notAfter) };
}

/**
 * DNS names of subjectAltName (RFC 6125: when present, the CN is not used), else the CN when it
 * looks like a host name. Node quotes SAN values with unusual characters; those are no host names.
 */
export function serverNames(cert: X509Certificate): string[] {
  const names: string[] = [];
  for (const entry of (cert.subjectAltName ?? '').split(', ')) {
    if (entry.startsWith('DNS:') && !entry.startsWith('DNS:"')) names.push(entry.slice(4).toLowerCase());
  }
  if (names.length > 0 || cert.subjectAltName !== undefined) return names;
  const cn = /^CN=(.+)$/m.exec(cert.subject)?.[1]?.toLowerCase();
  return cn !== undefined && isIP(cn) === 0 && /^(\*\.)?[a-z0-9.-]+$/.test(cn) ? [cn] : [];
}

function readText(file: string, variable: string, errors: string[]): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    errors.push(`${variable} ${file}: cannot read (${reason(err)})`);
    return null;
  }
}

function reason(err: unknown): string {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    case 'ENOTDIR':
      return 'not a directory';
    default:
      return (err as Error).message;
  }
}

function pemBlocks(text: string, label: string): string[] {
  const re = new RegExp(`-----BEGIN ${label}-----[^-]+-----END ${label}-----`, 'g');
  return text.match(re) ?? [];
}
