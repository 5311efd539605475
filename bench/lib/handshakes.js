// New-connection TLS load: `concurrency` loops, each opening a TLS connection, sending one
// "GET / HTTP/1.1" with "Connection: close", reading the whole response and closing, over and
// over for `durationS` seconds. No session is ever offered for resumption, so every connection is
// a full handshake (certificate, key exchange, signature). The certificate is not verified (it is
// a throwaway one; verifying would only add client CPU). Runs in the harness process: the client
// side of a handshake costs far less than the server side (which signs), but it still shares the
// CPUs with the target.
import tls from 'node:tls';

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** One connection: resolves { ok, status, ms, protocol, cipher } or { ok: false, error }. */
function oneRequest({ host, port, servername, timeoutMs }) {
  return new Promise((resolve) => {
    const started = performance.now();
    let done = false;
    let buf = '';
    let protocol = null;
    let cipher = null;
    const socket = tls.connect({ host, port, servername, rejectUnauthorized: false });
    const finish = (result) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...result, ms: performance.now() - started, protocol, cipher });
    };
    const timer = setTimeout(() => finish({ ok: false, error: 'timeout' }), timeoutMs);
    socket.setNoDelay(true);
    socket.on('secureConnect', () => {
      protocol = socket.getProtocol();
      cipher = socket.getCipher()?.name ?? null;
      socket.write(`GET / HTTP/1.1\r\nHost: ${servername ?? host}:${port}\r\nConnection: close\r\n\r\n`);
    });
    socket.setEncoding('latin1');
    socket.on('data', (chunk) => {
      buf += chunk;
      const head = buf.indexOf('\r\n\r\n');
      if (head < 0) return;
      const status = Number(buf.slice(9, 12));
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(buf.slice(0, head));
      // Without a length, the body ends when the server closes (handled by 'end').
      if (m && buf.length - head - 4 >= Number(m[1])) finish({ ok: status >= 200 && status < 300, status });
    });
    socket.on('end', () => {
      const status = buf.startsWith('HTTP/1.') ? Number(buf.slice(9, 12)) : null;
      finish(status ? { ok: status >= 200 && status < 300, status } : { ok: false, error: 'closed before a response' });
    });
    socket.on('error', (err) => finish({ ok: false, error: err.code ?? err.message }));
  });
}

/**
 * Resolves { handshakesPerS, completed, failed, non2xx, errors: { code: n }, p50Ms, p99Ms,
 * protocol, cipher, durationS } where completed counts connections that got a 2xx answer, and the
 * latencies run from connect() to the last byte of the response.
 */
export async function runHandshakes({ host = '127.0.0.1', port, servername = 'localhost', durationS = 5, concurrency = 16, timeoutMs = 5000 }) {
  const latencies = [];
  const errors = {};
  let completed = 0;
  let non2xx = 0;
  let protocol = null;
  let cipher = null;
  const started = performance.now();
  const deadline = started + durationS * 1000;
  const loop = async () => {
    while (performance.now() < deadline) {
      const r = await oneRequest({ host, port, servername, timeoutMs });
      if (r.ok) {
        completed++;
        latencies.push(r.ms);
        protocol ??= r.protocol;
        cipher ??= r.cipher;
      } else if (r.status) {
        non2xx++;
      } else {
        errors[r.error] = (errors[r.error] ?? 0) + 1;
        // A refused or reset connection returns at once; do not spin on a dead target.
        await new Promise((res) => setTimeout(res, 5));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const elapsedS = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const errorCount = Object.values(errors).reduce((a, b) => a + b, 0);
  return {
    handshakesPerS: completed / elapsedS,
    completed,
    non2xx,
    failed: non2xx + errorCount,
    errors,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    protocol,
    cipher,
    durationS: elapsedS,
  };
}
