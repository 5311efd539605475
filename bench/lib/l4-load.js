// Load for the L4 benchmarks (bench/l4.js, bench/l4-engine.js): downloads from the download
// backend (an 8-byte length in, that many bytes out) and connection churn against the echo backend.
import net from 'node:net';

/** `total` bytes downloaded over `streams` connections at once; MB/s (MB = 10^6 bytes). */
export async function download(port, total, streams) {
  const each = Math.floor(total / streams);
  const started = process.hrtime.bigint();
  const got = await Promise.all(
    Array.from({ length: streams }, () =>
      new Promise((resolve, reject) => {
        let n = 0;
        const s = net.connect({ host: '127.0.0.1', port }, () => {
          const req = Buffer.alloc(8);
          req.writeBigUInt64BE(BigInt(each));
          s.write(req);
        });
        s.on('data', (d) => (n += d.length));
        s.on('end', () => {
          s.destroy();
          resolve(n);
        });
        s.on('error', reject);
      }),
    ),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const bytes = got.reduce((a, b) => a + b, 0);
  if (bytes !== each * streams) throw new Error(`download: ${bytes} of ${each * streams} bytes arrived`);
  return { mb: bytes / 1e6, mbps: bytes / 1e6 / seconds };
}

/** `count` connections, `concurrency` at a time, each a 4-byte echo then close; conns/s. */
export async function connectionRate(port, count, concurrency) {
  let started = 0;
  const begin = process.hrtime.bigint();
  const one = () =>
    new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => s.write('ping'));
      s.setNoDelay(true);
      s.once('data', () => s.end());
      s.on('close', resolve);
      s.on('error', reject);
    });
  const lane = async () => {
    while (started < count) {
      started++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  const seconds = Number(process.hrtime.bigint() - begin) / 1e9;
  return { conns: count, connsPerS: count / seconds };
}
