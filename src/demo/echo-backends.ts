// The demo pool: three small echo servers on loopback, started when SLUICE_UPSTREAMS is unset so
// that `npm start` shows balancing at once. Each answers with its name and what it received.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ResolvedConfig } from '../config/types.js';
import { DEFAULT_POOL, resolvePool } from '../model/pool.js';
import type { Upstream } from '../model/upstream.js';

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

/** Whether no pool lists any upstream: then Sluice runs on the demo pool. */
export function hasNoUpstreams(config: ResolvedConfig): boolean {
  // A pool that discovers its backends has them, or will: no demo.
  return config.pools.every((p) => p.upstreams.length === 0 && p.discovery === undefined);
}

/**
 * The demo backends as the upstreams of the pool "default" (declared, or resolved from the
 * environment's defaults when the file did not declare it). Other pools keep their (empty) lists.
 */
export function withDemoUpstreams(config: ResolvedConfig, upstreams: readonly Upstream[]): ResolvedConfig {
  const declared = config.pools.some((p) => p.name === DEFAULT_POOL);
  const pools = declared
    ? config.pools.map((p) => (p.name === DEFAULT_POOL ? { ...p, upstreams } : p))
    : [resolvePool({ name: DEFAULT_POOL, upstreams, overrides: {} }, config), ...config.pools];
  return { ...config, pools };
}
