// Shared by the edge tests: a config file in a temp dir, Sluice started on it in front of a backend
// that echoes what it received, and a plain HTTP client that returns status, headers and body.

import http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSluice, type Sluice, type Teardown } from '../helpers/sluice.js';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** What the backend received, when it answered (the echo backend's JSON). */
  seen: { url: string; headers: Record<string, string> } | null;
}

export const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export function request(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        const seen = res.headers['x-echo'] === '1' ? (JSON.parse(text) as Reply['seen']) : null;
        resolve({ status: res.statusCode!, headers: res.headers, body: text, seen });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A backend handler that answers 200 with the URL and headers it received (x-echo: 1). */
export function echoJson(req: http.IncomingMessage, res: http.ServerResponse): void {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (c: string) => (body += c));
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-echo': '1' });
    res.end(JSON.stringify({ url: req.url, headers: req.headers, body }));
  });
}

export function writeConfig(yaml: string, files: Record<string, string> = {}): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-edge-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const file = join(dir, 'sluice.yaml');
  writeFileSync(file, yaml);
  return { dir, file };
}

export function startWithConfig(t: Teardown, yaml: string, options: { workers?: number; env?: Record<string, string>; files?: Record<string, string> } = {}): Promise<Sluice> {
  const { file } = writeConfig(yaml, options.files);
  return startSluice(t, { upstreams: [], workers: options.workers ?? 1, env: { SLUICE_CONFIG: file, ...options.env } });
}

/** Poll `check` until it returns true: a condition, re-checked every 20 ms, never a fixed sleep. */
export async function until(check: () => Promise<boolean> | boolean, what: string, tries = 1000): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`condition never held: ${what}`);
}

/** Fire `n` requests over `conns` keep-alive connections at once; their statuses in completion order. */
export async function blast(port: number, path: string, n: number, conns: number, headers: Record<string, string> = {}): Promise<number[]> {
  const pool = new http.Agent({ keepAlive: true, maxSockets: conns });
  const one = () =>
    new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path, headers, agent: pool }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      req.end();
    });
  const out = await Promise.all(Array.from({ length: n }, one));
  pool.destroy();
  return out;
}
