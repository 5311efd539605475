// Shared by the admin and metrics integration tests: start Sluice with its admin listener on a
// free loopback port, call the admin API, send traffic through the proxy, parse /metrics.

import http from 'node:http';
import { freePort, startSluice, ensureBuilt, type Sluice, type SluiceOptions, type Teardown } from '../helpers/sluice.js';

export interface WithAdmin {
  sluice: Sluice;
  /** http://127.0.0.1:<admin port> */
  admin: string;
}

/** Sluice with SLUICE_ADMIN_LISTEN on a free port; health checks off unless `env` turns them on. */
export async function startWithAdmin(t: Teardown, options: SluiceOptions): Promise<WithAdmin> {
  await ensureBuilt();
  const port = await freePort();
  const sluice = await startSluice(t, {
    ...options,
    env: { SLUICE_ADMIN_LISTEN: `127.0.0.1:${port}`, SLUICE_HEALTH_CHECK: 'off', ...options.env },
  });
  return { sluice, admin: `http://127.0.0.1:${port}` };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on its own connection (agent: false), so requests spread over the workers. */
export function request(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => (body += s));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** POST an admin action the way the status page does (X-Sluice-Admin header, JSON body). */
export function adminPost(admin: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return request(`${admin}${path}`, {
    method: 'POST',
    headers: { 'x-sluice-admin': '1', 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** `name{labels}` → value for every sample line (labels exactly as exposed). */
export function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

export async function scrape(admin: string, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const r = await request(`${admin}/metrics`, { headers });
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}: ${r.body}`);
  return parseMetrics(r.body);
}

/** Value of one sample, failing loudly when it is missing. */
export function sample(metrics: Map<string, number>, key: string): number {
  const v = metrics.get(key);
  if (v === undefined) throw new Error(`no sample ${key}; have:\n${[...metrics.keys()].join('\n')}`);
  return v;
}

/** Poll `fn` until it returns true (or throw after `timeoutMs`). */
export async function eventually(fn: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
