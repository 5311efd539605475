// Who may call the admin listener: the bearer token (compared in constant time), the Host header
// (against DNS rebinding when there is no token), and the guard on state-changing calls that keeps
// a web page in the operator's browser from posting to a loopback admin port (CSRF).

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { isLoopbackHost } from './value-parsers.js';

/** The header a POST must carry. A cross-site form cannot set it and a cross-site fetch with it needs CORS, which we never grant. */
export const MUTATION_HEADER = 'x-sluice-admin';

export type Refusal = { status: 401 | 403; reason: string };

export class TokenCheck {
  /** SHA-256 of the token: comparing fixed-length digests hides the token's length too. */
  readonly #digest: Buffer | null;

  constructor(token: string) {
    this.#digest = token === '' ? null : sha256(token);
  }

  get required(): boolean {
    return this.#digest !== null;
  }

  /** null when the request may proceed. 401: no usable credentials; 403: wrong token. */
  check(req: IncomingMessage): Refusal | null {
    if (this.#digest === null) return null;
    const header = req.headers.authorization;
    if (header === undefined) return { status: 401, reason: 'no Authorization header' };
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (m === null) return { status: 401, reason: 'Authorization is not a Bearer token' };
    return timingSafeEqual(sha256(m[1]!), this.#digest) ? null : { status: 403, reason: 'wrong token' };
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** The host part of a Host header value ("[::1]:9901" → "::1", "localhost:9901" → "localhost"). */
export function hostOnly(hostHeader: string): string {
  if (hostHeader.startsWith('[')) {
    const close = hostHeader.indexOf(']');
    return close < 0 ? hostHeader : hostHeader.slice(1, close);
  }
  const colon = hostHeader.lastIndexOf(':');
  return colon < 0 ? hostHeader : hostHeader.slice(0, colon);
}

/**
 * Without a token, the only thing keeping a malicious page out of a loopback admin port is the
 * browser's same-origin policy, and DNS rebinding gets around that: the page's own name resolves to
 * 127.0.0.1, and its requests carry that name in Host. So without a token, Host must be an IP
 * address or localhost (or the name the listener was configured with).
 */
export function hostAllowed(req: IncomingMessage, listenHost: string): boolean {
  const header = req.headers.host;
  if (header === undefined) return true; // HTTP/1.0 tools; browsers always send Host
  const host = hostOnly(header).toLowerCase();
  return isIP(host) !== 0 || isLoopbackHost(host) || host === listenHost.toLowerCase();
}

/** State-changing calls: the custom header is present, and a browser Origin, if any, is this server. */
export function mutationRefusal(req: IncomingMessage): Refusal | null {
  const marker = req.headers[MUTATION_HEADER];
  if (typeof marker !== 'string' || marker === '') return { status: 403, reason: `no ${MUTATION_HEADER} header` };
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let originHost: string;
    try {
      originHost = new URL(origin).host;
    } catch {
      return { status: 403, reason: 'unreadable Origin' };
    }
    if (originHost.toLowerCase() !== (req.headers.host ?? '').toLowerCase()) return { status: 403, reason: 'cross-origin request' };
  }
  return null;
}
