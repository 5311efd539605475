// Builds the upstream request head from what uWS parsed, in one pass over the client's headers.
//
// The request is re-framed, never relayed: Content-Length and Transfer-Encoding come from what was
// parsed (so a smuggled second length can't reach a backend), hop-by-hop headers are dropped, and
// the X-Forwarded-* / Via / X-Request-Id headers are added. One builder per worker, reused for
// every request: `forEach` runs synchronously, so a bound method and plain fields replace a
// per-request closure and object.

import type { HttpRequest } from 'uWebSockets.js';
import { randomBytes } from 'node:crypto';
import { NO_HEADER_OPS, type HeaderOps } from '../model/header-ops.js';

/** Where a request goes upstream, as its route decided: path, Host and header edits. */
export interface UpstreamTarget {
  /** The path to send (rewritten or as sent), without the query. */
  path: string;
  /** The Host header to send; null = the client's. */
  host: string | null;
  /** Request header edits (names dropped, lines appended). */
  headers: HeaderOps;
}

/** What the header pass decides about a header, by lower-case name. */
const DROP = 1;
const HOST = 2;
const CONTENT_LENGTH = 3;
const TRANSFER_ENCODING = 4;
const XFF = 5;
const XF_PROTO = 6;
const XF_HOST = 7;
const VIA = 8;
const REQUEST_ID = 9;
const TRACEPARENT = 12;
const TE = 10;
const UPGRADE = 11;
const CONNECTION = 13;

const RULES = new Map<string, number>([
  // RFC 9110 §7.6.1 hop-by-hop fields, plus the de-facto ones.
  ['connection', CONNECTION],
  ['keep-alive', DROP],
  ['proxy-connection', DROP],
  ['proxy-authorization', DROP],
  ['proxy-authenticate', DROP],
  ['trailer', DROP],
  ['te', TE],
  ['upgrade', UPGRADE],
  // uWS has already answered `Expect: 100-continue`; the body follows regardless.
  ['expect', DROP],
  ['host', HOST],
  ['content-length', CONTENT_LENGTH],
  ['transfer-encoding', TRANSFER_ENCODING],
  ['x-forwarded-for', XFF],
  ['x-forwarded-proto', XF_PROTO],
  ['x-forwarded-host', XF_HOST],
  ['via', VIA],
  ['x-request-id', REQUEST_ID],
  ['traceparent', TRACEPARENT],
]);

export const BodyKind = { NONE: 0, LENGTH: 1, CHUNKED: 2 } as const;
export type BodyKindValue = (typeof BodyKind)[keyof typeof BodyKind];

/** Why a request was refused before it reached a backend. */
export const Refusal = {
  NONE: 0,
  DUPLICATE_HOST: 1,
  CONFLICTING_LENGTH: 2,
  BAD_LENGTH: 3,
  BAD_TRANSFER_ENCODING: 4,
  HEAD_TOO_LARGE: 5,
  BAD_TARGET: 6,
  BAD_HOST: 7,
  BAD_HEADER: 8,
  BAD_METHOD: 9,
} as const;

// The octet rule (README, "Security"). uWS hands every part of the request over as a string
// decoded from UTF-8, and the head goes upstream encoded as UTF-8 again, so a part comes out as the
// octets that went in exactly when it is valid UTF-8 (an invalid sequence decodes to U+FFFD, so a
// U+FFFD anywhere is refused: it cannot be told from a lost octet). On top of that, nothing may
// carry a character that could end a line or a field upstream, whatever uWS let through:
/** Method: an RFC 9110 token. */
const METHOD_OK = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Path and query: no controls, space, DEL or U+FFFD (non-ASCII UTF-8 passes as sent). */
const TARGET_BAD = /[\x00-\x20\x7f\ufffd]/;
/** Host: reg-name, IP literal or IPv4, optional port; ASCII only (IDNs travel as punycode). */
const HOST_OK = /^[A-Za-z0-9\-._~!$&'()*+,;=:%\[\]]*$/;
/**
 * The forwarded header lines, checked in one pass: token names, values without controls (HTAB
 * aside), DEL or U+FFFD. CR and LF are excluded from values, so the CRLFs the builder wrote are
 * the only line ends there can be.
 */
const LINES_OK = /^(?:[!#$%&'*+\-.^_`|~0-9a-z]+: [^\x00-\x08\x0a-\x1f\x7f\ufffd]*\r\n)*$/;
/** Values Sluice keeps from the client outside the header lines (XFF, Via, X-Forwarded-*...). */
const VALUE_BAD = /[\x00-\x08\x0a-\x1f\x7f\ufffd]/;

/**
 * The last method and Host that passed their rule, per thread. Whether a string passes is a pure
 * function of the string, and a proxy sees the same few over and over: one string comparison
 * instead of a regular expression per request (each `test` call costs a few hundred instructions
 * even on a short string; docs/performance.md).
 */
let goodMethod = 'GET';
let goodHost = '';

const TRACEPARENT_RE = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const LENGTH = /^[0-9]{1,15}$/;

export class RequestHeadBuilder {
  /** The head, ready to write (ends with the blank line). */
  head = '';
  bodyKind: BodyKindValue = BodyKind.NONE;
  contentLength = 0;
  refusal = 0;
  requestId = '';
  /** Path and query as forwarded (for the access log). */
  path = '';
  /** W3C trace context: the trace id (32 hex) the request travels under. */
  traceId = '';
  host = '';
  /**
   * SLUICE_MAX_HEADER_BYTES, set once by the owner. uWS only bounds a head that arrives in several
   * reads; one that fits in a single read (up to its 512 KiB buffer) is parsed whatever its size.
   */
  maxHeadBytes = Number.MAX_SAFE_INTEGER;

  readonly #via: string;
  readonly #idPrefix: string;
  #idCounter = 0;
  #traceparent = '';
  #proto = 'http';
  #trusted = false;
  #hostCount = 0;
  #lengthCount = 0;
  /** Size of the client's header lines as sent, "name: value\r\n" each. */
  #headerBytes = 0;
  #te = '';
  #xff = '';
  #xfProto = '';
  #xfHost = '';
  #viaIn = '';
  #named: Set<string> | null = null;
  /** The route's request header edits for the request being built. */
  #ops: HeaderOps = NO_HEADER_OPS;
  /** A second Connection header named something the first did not: the pass must be redone. */
  #renamed = false;
  /** Content-Length: 0 was sent: forwarded as such (strict backends answer 411 without it). */
  #zeroLength = false;
  #lines = '';
  readonly #visit: (key: string, value: string) => void;

  constructor(viaName = 'sluice') {
    this.#via = `1.1 ${viaName}`;
    // Request ids: a random per-worker prefix and a counter: unique without a syscall per request.
    // Trace and request ids: 16 random hex digits per worker, then a 16-digit counter. Unique
    // without a random draw per request; the random half keeps workers and hosts apart.
    this.#idPrefix = randomBytes(8).toString('hex');
    this.#visit = (key, value) => this.#header(key, value);
  }

  /**
   * Build the head for `req` (`url` and `query` as uWS gave them) towards `target`. `clientIp` is
   * the peer address; `trusted` says whether that peer is a trusted proxy whose
   * X-Forwarded-Proto/-Host should be kept. Returns false when the request must be refused (see
   * `refusal`). With `target` null the request is only checked (a route Sluice answers itself).
   */
  build(req: HttpRequest, method: string, url: string, query: string, clientIp: string, proto: string, trusted: boolean, target: UpstreamTarget | null): boolean {
    this.#ops = target === null ? NO_HEADER_OPS : target.headers;
    this.#reset(proto, trusted);
    const connection = req.getHeader('connection');
    if (connection !== '') this.#named = namedHeaders(connection, null);
    req.forEach(this.#visit);
    if (this.#renamed) {
      // Rare: several Connection headers. Now that every name they list is known, go again.
      const named = this.#named;
      this.#reset(proto, trusted);
      this.#named = named;
      req.forEach(this.#visit);
    }
    // Request line ("GET /p?q HTTP/1.1\r\n"), header lines, blank line: the head as the client sent it.
    if (method.length + url.length + (query ? query.length + 1 : 0) + 12 + this.#headerBytes + 2 > this.maxHeadBytes) {
      this.refusal = Refusal.HEAD_TOO_LARGE;
    }
    if (this.refusal !== 0) return false;
    if (!this.#valid(method, url, query)) return false;

    if (this.#te !== '') {
      // uWS de-chunks the body; any other coding is one we cannot re-frame faithfully.
      if (this.#te.toLowerCase() !== 'chunked') {
        this.refusal = Refusal.BAD_TRANSFER_ENCODING;
        return false;
      }
      this.bodyKind = BodyKind.CHUNKED;
    } else if (this.#lengthCount > 0 && this.contentLength > 0) {
      this.bodyKind = BodyKind.LENGTH;
    }

    this.path = query ? url + '?' + query : url;
    if (target === null) return true;
    const ops = target.headers;
    if (!ops.empty) {
      // Edits checked at load (no CR/LF possible); appended after the client's own lines.
      for (let i = 0; i < ops.append.length; i++) this.#lines += ops.append[i]!.name + ': ' + ops.append[i]!.value + '\r\n';
    }
    const upstreamPath = target.path === url ? this.path : query ? target.path + '?' + query : target.path;
    let head = method + ' ' + upstreamPath + ' HTTP/1.1\r\nhost: ' + (target.host ?? this.host) + '\r\n' + this.#lines;
    head += 'x-forwarded-for: ' + (this.#xff === '' ? clientIp : this.#xff + ', ' + clientIp) + '\r\n';
    head += 'x-forwarded-proto: ' + (this.#trusted && this.#xfProto !== '' ? this.#xfProto : this.#proto) + '\r\n';
    head += 'x-forwarded-host: ' + (this.#trusted && this.#xfHost !== '' ? this.#xfHost : this.host) + '\r\n';
    head += 'via: ' + (this.#viaIn === '' ? this.#via : this.#viaIn + ', ' + this.#via) + '\r\n';
    // W3C Trace Context: a valid traceparent passes through unchanged; without one, Sluice starts
    // the trace. The request id is tied to it: absent an X-Request-Id, it is the trace id.
    if (this.#traceparent !== '') {
      this.traceId = this.#traceparent.slice(3, 35);
      head += 'traceparent: ' + this.#traceparent + '\r\n';
    } else {
      const n = (this.#idCounter++).toString(16);
      const counter = '0000000000000000'.slice(n.length) + n;
      this.traceId = this.#idPrefix + counter;
      head += 'traceparent: 00-' + this.traceId + '-' + counter + '-01\r\n';
    }
    if (this.requestId === '') this.requestId = this.traceId;
    head += 'x-request-id: ' + this.requestId + '\r\n';
    if (this.bodyKind === BodyKind.LENGTH) head += 'content-length: ' + this.contentLength + '\r\n';
    else if (this.bodyKind === BodyKind.CHUNKED) head += 'transfer-encoding: chunked\r\n';
    else if (this.#zeroLength) head += 'content-length: 0\r\n';
    this.head = head + '\r\n';
    return true;
  }

  /** The octet rule (see the top of this file); sets `refusal` and returns false on a breach. */
  #valid(method: string, url: string, query: string): boolean {
    const host = this.host;
    if (method !== goodMethod && !METHOD_OK.test(method)) this.refusal = Refusal.BAD_METHOD;
    else if (TARGET_BAD.test(url) || (query !== '' && TARGET_BAD.test(query))) {
      this.refusal = Refusal.BAD_TARGET;
    } else if (host !== goodHost && !HOST_OK.test(host)) this.refusal = Refusal.BAD_HOST;
    // An empty string passes every rule below: most requests carry none of these headers.
    else if (
      (this.#lines !== '' && !LINES_OK.test(this.#lines)) ||
      (this.#xff !== '' && VALUE_BAD.test(this.#xff)) ||
      (this.#xfProto !== '' && VALUE_BAD.test(this.#xfProto)) ||
      (this.#xfHost !== '' && VALUE_BAD.test(this.#xfHost)) ||
      (this.#viaIn !== '' && VALUE_BAD.test(this.#viaIn)) ||
      (this.requestId !== '' && VALUE_BAD.test(this.requestId))
    ) {
      this.refusal = Refusal.BAD_HEADER;
    }
    if (this.refusal !== 0) return false;
    goodMethod = method;
    goodHost = host;
    return true;
  }

  #reset(proto: string, trusted: boolean): void {
    this.head = '';
    this.bodyKind = BodyKind.NONE;
    this.contentLength = 0;
    this.refusal = 0;
    this.requestId = '';
    this.traceId = '';
    this.#traceparent = '';
    this.host = '';
    this.#proto = proto;
    this.#trusted = trusted;
    this.#hostCount = 0;
    this.#lengthCount = 0;
    this.#headerBytes = 0;
    this.#te = '';
    this.#xff = '';
    this.#xfProto = '';
    this.#xfHost = '';
    this.#viaIn = '';
    this.#named = null;
    this.#renamed = false;
    this.#zeroLength = false;
    this.#lines = '';
  }

  #header(key: string, value: string): void {
    this.#headerBytes += key.length + value.length + 4;
    const rule = RULES.get(key);
    if (rule === undefined) {
      if ((this.#named === null || !this.#named.has(key)) && (this.#ops.empty || !this.#ops.drops.has(key))) {
        this.#lines += key + ': ' + value + '\r\n';
      }
      return;
    }
    switch (rule) {
      case HOST:
        // uWS accepts a repeated Host; two authorities for one request is a classic smuggling lever.
        if (++this.#hostCount > 1) this.refusal = Refusal.DUPLICATE_HOST;
        this.host = value;
        return;
      case CONTENT_LENGTH: {
        // uWS frames the body by the first Content-Length and ignores the rest: refuse disagreement.
        if (!LENGTH.test(value)) {
          this.refusal = Refusal.BAD_LENGTH;
          return;
        }
        const n = Number(value);
        if (++this.#lengthCount > 1 && n !== this.contentLength) this.refusal = Refusal.CONFLICTING_LENGTH;
        this.contentLength = n;
        this.#zeroLength = n === 0;
        return;
      }
      case TRANSFER_ENCODING:
        this.#te = this.#te === '' ? value : this.#te + ', ' + value;
        return;
      case XFF:
        this.#xff = this.#xff === '' ? value : this.#xff + ', ' + value;
        return;
      case XF_PROTO:
        this.#xfProto = value;
        return;
      case XF_HOST:
        this.#xfHost = value;
        return;
      case VIA:
        this.#viaIn = this.#viaIn === '' ? value : this.#viaIn + ', ' + value;
        return;
      case TRACEPARENT:
        // version 00: "00-" 32 hex trace id "-" 16 hex parent id "-" 2 hex flags; an all-zero id
        // is invalid. Anything else is dropped and a new trace started (W3C Trace Context §4.3).
        if (TRACEPARENT_RE.test(value) && !value.startsWith('00-00000000000000000000000000000000') && !value.includes('-0000000000000000-')) {
          this.#traceparent = value;
        }
        return;
      case REQUEST_ID:
        if (value.length <= 200) this.requestId = value;
        return;
      case TE:
        // Only "trailers" means something end to end (RFC 9110 §10.1.4).
        if (value.toLowerCase().includes('trailers')) this.#lines += 'te: trailers\r\n';
        return;
      case CONNECTION: {
        // Only the first Connection header was read up front (getHeader returns one).
        const before = this.#named === null ? 0 : this.#named.size;
        this.#named = namedHeaders(value, this.#named);
        if (this.#named.size !== before) this.#renamed = true;
        return;
      }
      case UPGRADE: // upgrades are not forwarded by the HTTP path
      case DROP:
        return;
    }
  }
}

/** The header names listed in a Connection header (they are hop-by-hop too), added to `set`. */
function namedHeaders(connection: string, into: Set<string> | null): Set<string> {
  const set = into ?? new Set<string>();
  for (const token of connection.split(',')) {
    const name = token.trim().toLowerCase();
    if (name !== '') set.add(name);
  }
  return set;
}

/** Response headers never relayed to the client: hop-by-hop, plus the ones uWS writes itself. */
export const RESPONSE_DROP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'date',
]);
