// https:// upstreams: verified against SLUICE_UPSTREAM_CA (a private CA), refused (502) when the
// backend's CA is not trusted, accepted unverified only with SLUICE_UPSTREAM_INSECURE=1, and kept
// alive across requests. The backend is a node:https server with a certificate from our generator.

import t from 'tap';
import http from 'node:http';
import { startSluice } from '../helpers/sluice.js';
import { makeCerts, startHttpsBackend } from './fixtures/tls.js';

const certs = await makeCerts(t, ['trusted', 'stranger'], {
  backend: { names: ['localhost', '127.0.0.1'], ca: 'trusted' },
  impostor: { names: ['localhost', '127.0.0.1'], ca: 'stranger' },
});

// Active health checks are off so every backend takes traffic at once (these tests are about
// TLS, not about when a check first passes); retries are off so the first TLS failure is the answer.
const common = { SLUICE_ADMIN_LISTEN: 'off', SLUICE_HEALTH_CHECK: 'off', SLUICE_RETRIES: '0' };

function get(port: number, path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (s: string) => (body += s));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}

t.test('a private CA in SLUICE_UPSTREAM_CA: verified, proxied, kept alive', async (t) => {
  const backend = await startHttpsBackend(t, certs.leaves.backend!);
  // By IP (no SNI, the IP SAN is checked) and by name (SNI localhost), alternately.
  const sluice = await startSluice(t, {
    upstreams: [`https://127.0.0.1:${backend.port}`, `https://localhost:${backend.port}`],
    env: { ...common, SLUICE_UPSTREAM_CA: certs.cas.trusted!.cert, SLUICE_BALANCER: 'round-robin' },
  });
  for (let i = 0; i < 6; i++) {
    const res = await get(sluice.port, `/secure/${i}`);
    t.equal(res.status, 200, `request ${i} proxied over TLS`);
    t.match(JSON.parse(res.body), { url: `/secure/${i}`, servedBy: 'https-backend' });
  }
  t.equal(backend.seen.at(-1)!.proto, 'http', 'X-Forwarded-Proto is the client side, not the upstream side');
  t.equal(backend.connections, 2, 'six requests over two kept-alive TLS connections, one per upstream');
});

t.test('a backend whose CA is not trusted gets 502, naming the TLS failure in the log', async (t) => {
  const backend = await startHttpsBackend(t, certs.leaves.impostor!);
  const sluice = await startSluice(t, {
    upstreams: [`https://127.0.0.1:${backend.port}`],
    env: { ...common, SLUICE_UPSTREAM_CA: certs.cas.trusted!.cert },
  });
  const res = await get(sluice.port, '/');
  t.equal(res.status, 502);
  t.equal(res.headers['x-sluice-error'], 'connect');
  t.equal(backend.seen.length, 0, 'no request was sent to the unverified backend');
  const line = await sluice.waitForLog((l) => l.msg === 'upstream error');
  t.match(String(line.err), /UNABLE_TO_VERIFY|certificate/i);
});

t.test('the system roots do not trust a private CA: 502 without SLUICE_UPSTREAM_CA', async (t) => {
  const backend = await startHttpsBackend(t, certs.leaves.backend!);
  const sluice = await startSluice(t, { upstreams: [`https://127.0.0.1:${backend.port}`], env: common });
  t.equal((await get(sluice.port, '/')).status, 502);
  t.equal(backend.seen.length, 0);
});

t.test('SLUICE_UPSTREAM_INSECURE=1 skips verification, with a warning at start', async (t) => {
  const backend = await startHttpsBackend(t, certs.leaves.impostor!);
  const sluice = await startSluice(t, {
    upstreams: [`https://127.0.0.1:${backend.port}`],
    env: { ...common, SLUICE_UPSTREAM_INSECURE: '1' },
  });
  t.equal((await get(sluice.port, '/insecure')).status, 200);
  const warning = sluice.logs().find((l) => l.level === 40 && /SLUICE_UPSTREAM_INSECURE/.test(l.msg));
  t.ok(warning, 'a warning says verification is off');
});
