// Forward authentication (nginx auth_request, Traefik ForwardAuth, Envoy ext_authz over HTTP): a
// GET to the auth service carrying the client's headers and X-Forwarded-Method/-Uri/-Host/-Proto/
// -For. A 2xx lets the request through with the listed response headers copied onto it; any other
// answer goes back to the client as it came (status, headers, body up to 64 KiB). With cache: true
// a 2xx carrying Cache-Control max-age is reused for that long for the same Authorization and
// Cookie values.

import http from 'node:http';
import https from 'node:https';
import { createHash } from 'node:crypto';
import type { HttpRequest } from 'uWebSockets.js';
import type { ForwardAuthSpec } from '../model/edge.js';
import { BoundedCache, deny, type Outcome } from './outcome.js';

const MAX_BODY = 64 * 1024;
const CACHE_MAX = 4096;
/** Request headers not passed to the auth service (hop-by-hop and framing). */
const SKIP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length', 'proxy-connection', 'expect']);
/** Response headers of a refusal not passed back (framing: uWS writes its own). */
const SKIP_BACK = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'date']);
const UNAVAILABLE = deny(503, 'auth service unavailable\n', 'x-sluice-error', 'auth-unavailable', 'retry-after', '1');

export class ForwardAuth {
  readonly #spec: ForwardAuthSpec;
  readonly #url: URL;
  readonly #agent: http.Agent;
  readonly #cache = new BoundedCache<{ outcome: Outcome; until: number }>(CACHE_MAX);

  constructor(spec: ForwardAuthSpec) {
    this.#spec = spec;
    this.#url = new URL(spec.url);
    const Agent = this.#url.protocol === 'https:' ? https.Agent : http.Agent;
    this.#agent = new Agent({ keepAlive: true, maxSockets: 256 });
  }

  /** Reads every header now (the request object is gone after this returns). */
  begin(req: HttpRequest, method: string, query: string, client: string, proto: string): Outcome | Promise<Outcome> {
    const headers: Record<string, string> = {};
    req.forEach((name, value) => {
      if (SKIP.has(name)) return;
      headers[name] = name in headers ? headers[name] + ', ' + value : value;
    });
    const uri = req.getUrl() + (query === '' ? '' : '?' + query);
    let cacheKey = '';
    if (this.#spec.cache) {
      cacheKey = createHash('sha256')
        .update((headers.authorization ?? '') + '\0' + (headers.cookie ?? ''))
        .digest('base64');
      const hit = this.#cache.get(cacheKey);
      if (hit !== undefined && Date.now() < hit.until) return hit.outcome;
    }
    headers['x-forwarded-method'] = method;
    headers['x-forwarded-uri'] = uri;
    headers['x-forwarded-host'] = headers.host ?? '';
    headers['x-forwarded-proto'] = proto;
    headers['x-forwarded-for'] = headers['x-forwarded-for'] === undefined ? client : headers['x-forwarded-for'] + ', ' + client;
    headers.host = this.#url.host;
    return this.#ask(headers, cacheKey);
  }

  #ask(headers: Record<string, string>, cacheKey: string): Promise<Outcome> {
    const mod = this.#url.protocol === 'https:' ? https : http;
    return new Promise<Outcome>((resolve) => {
      const r = mod.request(this.#url, { method: 'GET', headers, agent: this.#agent, timeout: this.#spec.timeoutMs }, (resp) => {
        const chunks: Buffer[] = [];
        let size = 0;
        resp.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= MAX_BODY) chunks.push(c);
        });
        resp.on('error', () => resolve(UNAVAILABLE));
        resp.on('end', () => resolve(this.#answer(resp, Buffer.concat(chunks).toString('utf8'), cacheKey)));
      });
      r.on('timeout', () => r.destroy(new Error('timeout')));
      r.on('error', () => resolve(UNAVAILABLE));
      r.end();
    });
  }

  #answer(resp: http.IncomingMessage, body: string, cacheKey: string): Outcome {
    const status = resp.statusCode ?? 502;
    const raw = resp.rawHeaders;
    if (status >= 200 && status < 300) {
      let lines = '';
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i]!.toLowerCase();
        if (this.#spec.copyHeaders.includes(name) && !/[\x00-\x08\x0a-\x1f\x7f]/.test(raw[i + 1]!)) lines += name + ': ' + raw[i + 1] + '\r\n';
      }
      const outcome: Outcome = { ok: true, lines, claims: null };
      if (cacheKey !== '') {
        const m = /(?:^|,)\s*max-age=(\d+)/i.exec(resp.headers['cache-control'] ?? '');
        if (m !== null && !/no-store|no-cache/i.test(resp.headers['cache-control'] ?? '')) this.#cache.set(cacheKey, { outcome, until: Date.now() + Number(m[1]) * 1000 });
      }
      return outcome;
    }
    const back: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      if (!SKIP_BACK.has(name)) back.push(name, raw[i + 1]!);
    }
    return { ok: false, status: status < 400 && status >= 300 ? status : status < 400 ? 403 : status, headers: back, body };
  }

  close(): void {
    this.#agent.destroy();
  }
}
