// The demo pool: three small echo servers on loopback, started when SLUICE_UPSTREAMS is unset so
// that `npm start` shows balancing at once. Each answers with its name and what it received.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Upstream } from '../config/types.js';

export interface DemoPool {
  upstreams: Upstream[];
  close(): Promise<void>;
}

export async function startDemoPool(count = 3): Promise<DemoPool> {
  const servers: http.Server[] = [];
  const upstreams: Upstream[] = [];
  for (let i = 0; i < count; i++) {
    const name = `demo-${i + 1}`;
    const server = http.createServer((req, res) => {
      let bytes = 0;
      req.on('data', (c: Buffer) => (bytes += c.length));
      req.on('end', () => {
        const body = JSON.stringify({ backend: name, method: req.method, url: req.url, bodyBytes: bytes, headers: req.headers }, null, 2);
        res.writeHead(200, { 'content-type': 'application/json', 'x-demo-backend': name });
        res.end(body + '\n');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    servers.push(server);
    upstreams.push({ url: `http://127.0.0.1:${port}`, protocol: 'http:', host: '127.0.0.1', port, weight: 1 });
  }
  return {
    upstreams,
    close: async () => {
      await Promise.all(
        servers.map((s) => new Promise<void>((resolve) => { s.closeAllConnections(); s.close(() => resolve()); })),
      );
    },
  };
}
