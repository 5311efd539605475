// Shared pieces of the TLS tests: certificates made with Sluice's own generator (src/tls, on its
// piscina pool, so a file's few RSA keys are made in parallel) in a temporary directory, TLS and
// HTTPS clients that report what the server presented, and an HTTPS echo backend.

import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { CertPool } from '../../src/tls/cert-pool.js';
import type { KeyPairPem } from '../../src/tls/generate.js';
import { ensureBuilt, type Teardown } from '../helpers/sluice.js';

export interface LeafPlan {
  /** subjectAltName entries (DNS names, wildcards, IPs); the first is the CN. */
  readonly names: readonly string[];
  /** Which CA of the plan signs it; default 'ca'. */
  readonly ca?: string;
  /** Sub-directory of the temp dir to write it into ('' = the top). */
  readonly dir?: string;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

export interface Pair {
  readonly cert: string;
  readonly key: string;
  readonly pem: KeyPairPem;
}

export interface Certs {
  /** The temporary directory (removed at teardown). */
  readonly dir: string;
  /** CA certificate files and PEM, by plan name. */
  readonly cas: Record<string, Pair>;
  /** Leaf files and PEM, by plan name. */
  readonly leaves: Record<string, Pair>;
}

/**
 * Make `cas` (names of CAs) and `leaves` into a fresh temp dir: CAs first (in parallel), then every
 * leaf in parallel. Leaf files are <name>.crt / <name>.key in `dir` of their plan.
 */
export async function makeCerts(t: Teardown, cas: readonly string[], leaves: Record<string, LeafPlan>): Promise<Certs> {
  await ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pool = new CertPool();
  try {
    const caPem = await Promise.all(cas.map((name) => pool.ca({ commonName: `Sluice test CA ${name}` })));
    const caPairs: Record<string, Pair> = {};
    cas.forEach((name, i) => (caPairs[name] = write(dir, '', `${name}-ca`, caPem[i]!)));
    const names = Object.keys(leaves);
    const leafPem = await Promise.all(
      names.map((name) => {
        const plan = leaves[name]!;
        const ca = caPairs[plan.ca ?? 'ca'];
        if (ca === undefined) throw new Error(`leaf ${name}: no CA named ${plan.ca ?? 'ca'} in the plan`);
        return pool.leaf({ ca: ca.pem, names: plan.names, notBefore: plan.notBefore, notAfter: plan.notAfter });
      }),
    );
    const leafPairs: Record<string, Pair> = {};
    names.forEach((name, i) => (leafPairs[name] = write(dir, leaves[name]!.dir ?? '', name, leafPem[i]!)));
    return { dir, cas: caPairs, leaves: leafPairs };
  } finally {
    await pool.close();
  }
}

function write(dir: string, sub: string, name: string, pem: KeyPairPem): Pair {
  const where = join(dir, sub);
  mkdirSync(where, { recursive: true });
  const cert = join(where, `${name}.crt`);
  const key = join(where, `${name}.key`);
  writeFileSync(cert, pem.certPem);
  writeFileSync(key, pem.keyPem, { mode: 0o600 });
  return { cert, key, pem };
}

/** What a TLS handshake showed. */
export interface Handshake {
  readonly subjectCN: string;
  readonly altNames: string;
  readonly protocol: string | null;
  readonly authorized: boolean;
  readonly authorizationError: string | null;
  readonly alpn: string | false;
}

/** Connect, complete the handshake, report what the server presented, close. */
export function handshake(port: number, options: tls.ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options }, () => {
      const peer = socket.getPeerCertificate();
      const result: Handshake = {
        subjectCN: String(peer.subject?.CN ?? ''),
        altNames: peer.subjectaltname ?? '',
        protocol: socket.getProtocol(),
        authorized: socket.authorized,
        authorizationError: socket.authorizationError === null ? null : String(socket.authorizationError),
        alpn: socket.alpnProtocol,
      };
      socket.end();
      resolve(result);
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('handshake timed out')));
    socket.once('error', reject);
  });
}

export interface HttpsResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One HTTPS request to 127.0.0.1:`port` on a fresh connection, verifying against `ca`. */
export function httpsRequest(
  port: number,
  options: { ca?: string; servername?: string; path?: string; method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<HttpsResult> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: options.path ?? '/',
        method: options.method ?? 'GET',
        ca: options.ca,
        servername: options.servername,
        headers: { host: options.servername ?? 'localhost', ...options.headers },
        agent: false,
        timeout: 10_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (s: string) => (body += s));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Send raw bytes over plain TCP and collect whatever comes back until the server closes. */
export function rawExchange(port: number, bytes: string, timeoutMs = 5000): Promise<{ received: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(bytes));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ received: Buffer.concat(chunks), closed: false });
    }, timeoutMs);
    socket.on('data', (b: Buffer) => chunks.push(b));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ received: Buffer.concat(chunks), closed: true });
    });
  });
}

export interface HttpsBackend {
  readonly port: number;
  /** Requests seen: method, url and the x-forwarded-proto header. */
  readonly seen: { method: string; url: string; proto: string | undefined }[];
  connections: number;
}

/** An HTTPS echo server on loopback with `pair` as its certificate; closed at teardown. */
export async function startHttpsBackend(t: Teardown, pair: Pair): Promise<HttpsBackend> {
  const seen: HttpsBackend['seen'] = [];
  const server = https.createServer({ cert: pair.pem.certPem, key: pair.pem.keyPem, keepAliveTimeout: 30_000 }, (req, res) => {
    seen.push({ method: req.method!, url: req.url!, proto: req.headers['x-forwarded-proto'] as string | undefined });
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({ url: req.url, servedBy: 'https-backend' });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  const backend: HttpsBackend = { port: 0, seen, connections: 0 };
  server.on('secureConnection', () => backend.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (backend as { port: number }).port = (server.address() as net.AddressInfo).port;
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return backend;
}
