// Development certificates with node-forge: a local certificate authority and leaf certificates
// signed by it, with the subjectAltName entries clients check (DNS names, wildcards, IP addresses).
// Pure functions of their input (plus randomness): `npm run certs` and the tests run them in a
// piscina pool (workers/cert-task.ts) so several keys are made at once and no event loop stalls.

import { isIP } from 'node:net';
import forge from 'node-forge';

/** PEM text of one certificate and its unencrypted private key. */
export interface KeyPairPem {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface CaRequest {
  /** Subject common name; default "Sluice Development CA". */
  readonly commonName?: string;
  /** Validity from now; default 3650 days. */
  readonly days?: number;
  /** RSA modulus size; default 2048. */
  readonly bits?: number;
}

export interface LeafRequest {
  /** The issuing CA. */
  readonly ca: KeyPairPem;
  /** DNS names (wildcards such as *.example.test allowed) and IP addresses; the first is the CN. */
  readonly names: readonly string[];
  /** Validity window; default from one hour ago (clock skew) to `days` from now. */
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** Used when notAfter is not given; default 825 days (the most Apple platforms accept for TLS). */
  readonly days?: number;
  readonly bits?: number;
}

const DAY_MS = 86_400_000;
const DEFAULT_BITS = 2048;
const RSA_EXPONENT = 0x10001;

/**
 * A self-signed CA certificate allowed to sign server certificates only (pathLenConstraint 0).
 * node-forge hands RSA key generation to node:crypto when it is available and signs in pure JS.
 */
export function createCa(request: CaRequest = {}): KeyPairPem {
  const keys = forge.pki.rsa.generateKeyPair({ bits: request.bits ?? DEFAULT_BITS, e: RSA_EXPONENT });
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serialNumber();
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 3_600_000);
  cert.validity.notAfter = new Date(now + (request.days ?? 3650) * DAY_MS);
  const subject = [
    { name: 'commonName', value: request.commonName ?? 'Sluice Development CA' },
    { name: 'organizationName', value: 'Sluice (development only)' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(keys.privateKey) };
}

/** A server certificate for `names`, signed by `request.ca`. */
export function createLeaf(request: LeafRequest): KeyPairPem {
  if (request.names.length === 0) throw new Error('a leaf certificate needs at least one name');
  const caCert = forge.pki.certificateFromPem(request.ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(request.ca.keyPem);
  const keys = forge.pki.rsa.generateKeyPair({ bits: request.bits ?? DEFAULT_BITS, e: RSA_EXPONENT });
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serialNumber();
  const now = Date.now();
  cert.validity.notBefore = request.notBefore ?? new Date(now - 3_600_000);
  cert.validity.notAfter = request.notAfter ?? new Date(now + (request.days ?? 825) * DAY_MS);
  cert.setSubject([{ name: 'commonName', value: request.names[0]! }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: request.names.map(altName) },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(keys.privateKey) };
}

/** GeneralName types from RFC 5280 §4.2.1.6: 2 = dNSName, 7 = iPAddress. */
function altName(name: string): { type: number; value?: string; ip?: string } {
  return isIP(name) === 0 ? { type: 2, value: name } : { type: 7, ip: name };
}

/** 16 random bytes as hex, top bit clear so the DER INTEGER stays positive (RFC 5280 §4.1.2.2). */
function serialNumber(): string {
  const bytes = forge.random.getBytesSync(16);
  const first = (bytes.charCodeAt(0) & 0x7f) | 0x01;
  return forge.util.bytesToHex(String.fromCharCode(first) + bytes.slice(1));
}
