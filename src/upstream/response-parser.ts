// Incremental HTTP/1.1 response parser for upstream connections (RFC 9112).
//
// One parser per connection, reset per exchange. It is strict on purpose: anything a lenient
// parser would have to guess about (bad status line, obs-fold, differing Content-Length, bytes
// after the framed end) is a protocol error, and the connection is thrown away rather than reused,
// because guessing is how response desynchronisation starts. Body bytes are handed on as views of
// the socket's own buffers (no copies).

export const Framing = { NONE: 0, LENGTH: 1, CHUNKED: 2, CLOSE: 3 } as const;
export type FramingKind = (typeof Framing)[keyof typeof Framing];

export interface ResponseSink {
  /**
   * Final (non-1xx) response head. Header names are lower-cased; `headers` is [name, value, ...],
   * each value one character per octet (latin1). `octets`: some value or the reason phrase has an
   * octet over 0x7F, so they must be written back as those octets, not re-encoded as UTF-8.
   */
  onHead(status: number, reason: string, headers: string[], framing: FramingKind, contentLength: number, octets: boolean): void;
  /** A piece of the decoded body. Return false to ask the connection to stop reading for now. */
  onBody(chunk: Buffer): boolean;
  /** The response is complete; `keepAlive` tells whether the connection may carry another exchange. */
  onComplete(keepAlive: boolean): void;
}

export class ParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ParseError';
  }
}

/** Longest response head accepted (status line + headers). */
const MAX_HEAD_BYTES = 64 * 1024;
/** Longest chunk-size line or trailer line. */
const MAX_LINE_BYTES = 4096;
/** Chunk sizes above this (16 hex digits would overflow a double's exact range) are refused. */
const MAX_CHUNK_HEX_DIGITS = 12;

const S_HEAD = 0;
const S_LENGTH = 1;
const S_CHUNK_SIZE = 2;
const S_CHUNK_DATA = 3;
const S_CHUNK_CRLF = 4;
const S_TRAILERS = 5;
const S_CLOSE = 6;
const S_DONE = 7;

/**
 * Buffer's own latin1 decoder, called directly: `toString('latin1', ...)` adds argument checks and
 * an encoding-table dispatch (shared with every other caller in the process) to every call.
 */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice(this: Buffer, start: number, end: number): string }).latin1Slice;

const HEX = /^[0-9A-Fa-f]+$/;
const CRLFCRLF = Buffer.from('\r\n\r\n');

export class ResponseParser {
  #sink: ResponseSink | null = null;
  #state = S_DONE;
  #noBody = false;
  #keepAlive = true;
  #remaining = 0;
  #pending: Buffer | null = null;
  #line = '';
  /** Another request was written behind this one (pipelining): bytes after the end are its response. */
  #more = false;

  /**
   * Prepare for the next response. `isHead`: the request was HEAD, so no body follows. `more`:
   * another request is already on the wire behind this one, so bytes after this response's end
   * belong to the next response instead of being stray.
   */
  reset(sink: ResponseSink, isHead: boolean, more = false): void {
    this.#sink = sink;
    this.#more = more;
    this.#state = S_HEAD;
    this.#noBody = isHead;
    this.#keepAlive = true;
    this.#remaining = 0;
    this.#pending = null;
    this.#line = '';
  }

  /** True while a response is being read (anything but idle or done). */
  get active(): boolean {
    return this.#state !== S_DONE;
  }

  /** True once any byte of the current response head has arrived. */
  get started(): boolean {
    return this.#state !== S_HEAD || this.#pending !== null;
  }

  /** Tell the parser, mid-response, that another request is now on the wire behind this one. */
  expectMore(): void {
    this.#more = true;
  }

  /**
   * Feed bytes from the socket, from `start`. Returns where it stopped: `buf.length`, or, when the
   * response completed and another was expected behind it (`more`), the offset of the next
   * response's first byte. Throws ParseError on a malformed response.
   */
  execute(buf: Buffer, start = 0): number {
    let off = start;
    const len = buf.length;
    if (this.#state === S_DONE) {
      if (len > off) throw new ParseError('bytes received with no request outstanding');
      return len;
    }
    while (off < len || this.#state === S_DONE) {
      switch (this.#state) {
        case S_HEAD: {
          const r = this.#readHead(buf, off);
          if (r < 0) return len; // need more bytes
          off = r;
          break;
        }
        case S_LENGTH: {
          const n = Math.min(this.#remaining, len - off);
          this.#remaining -= n;
          const piece = buf.subarray(off, off + n);
          off += n;
          this.#sink!.onBody(piece);
          if (this.#remaining === 0) this.#state = S_DONE;
          break;
        }
        case S_CHUNK_SIZE: {
          const r = this.#readLine(buf, off);
          if (r < 0) return len;
          off = r;
          this.#chunkSize(this.#line);
          this.#line = '';
          break;
        }
        case S_CHUNK_DATA: {
          const n = Math.min(this.#remaining, len - off);
          this.#remaining -= n;
          const piece = buf.subarray(off, off + n);
          off += n;
          this.#sink!.onBody(piece);
          if (this.#remaining === 0) this.#state = S_CHUNK_CRLF;
          break;
        }
        case S_CHUNK_CRLF: {
          const r = this.#readLine(buf, off);
          if (r < 0) return len;
          off = r;
          if (this.#line !== '') throw new ParseError('chunk data not followed by CRLF');
          this.#state = S_CHUNK_SIZE;
          break;
        }
        case S_TRAILERS: {
          const r = this.#readLine(buf, off);
          if (r < 0) return len;
          off = r;
          // Trailers are read and dropped: the client side (uWS) cannot send them.
          if (this.#line === '') this.#state = S_DONE;
          this.#line = '';
          break;
        }
        case S_CLOSE: {
          const piece = off === 0 ? buf : buf.subarray(off);
          off = len;
          this.#sink!.onBody(piece);
          return len;
        }
        case S_DONE: {
          // Bytes after a complete response, with no request behind it, mean the backend and we
          // disagree about framing: never reuse such a connection.
          const sink = this.#sink!;
          this.#sink = null;
          sink.onComplete(this.#keepAlive && (this.#more || off === len));
          return off;
        }
      }
    }
    return len;
  }

  /**
   * The backend closed the connection. Completes a close-delimited body; anything else that was
   * mid-response is truncated and throws.
   */
  finish(): void {
    if (this.#state === S_CLOSE) {
      this.#state = S_DONE;
      const sink = this.#sink!;
      this.#sink = null;
      sink.onComplete(false);
      return;
    }
    if (this.#state !== S_DONE) throw new ParseError('connection closed before the response was complete');
  }

  /** Returns the offset after the head, or -1 when more bytes are needed. */
  #readHead(buf: Buffer, off: number): number {
    let data = off === 0 ? buf : buf.subarray(off);
    let base = 0;
    if (this.#pending) {
      base = this.#pending.length;
      data = Buffer.concat([this.#pending, data]);
      this.#pending = null;
    }
    // Search from a little before the old end, in case CRLFCRLF straddles the boundary.
    const end = data.indexOf(CRLFCRLF, Math.max(0, base - 3));
    if (end < 0) {
      // Up to 3 bytes may be the start of the terminator, so only past that is the head surely too
      // large (otherwise the verdict on a head near the limit would depend on where reads split).
      if (data.length > MAX_HEAD_BYTES + 3) throw new ParseError('response head too large');
      this.#pending = Buffer.from(data); // own copy: the socket may reuse nothing, but be safe
      return -1;
    }
    if (end > MAX_HEAD_BYTES) throw new ParseError('response head too large');
    this.#parseHead(data, 0, end);
    // Position in `buf` just after the head.
    return off + (end + 4 - base);
  }

  /**
   * Parse the head in `buf[from, to)` (`to` is where its blank line starts). The checks run on the
   * octets (one pass per line, a table lookup per name octet, no regular expression); strings are
   * sliced from one latin1 copy of the head, and only for the reason, names and values.
   */
  #parseHead(buf: Buffer, from: number, to: number): void {
    const head = latin1Slice.call(buf, from, to);
    let eol = lineEnd(buf, from, to);
    // HTTP-version SP 3DIGIT SP [reason]
    const n = eol - from;
    if (
      n < 12 ||
      buf[from] !== 0x48 || buf[from + 1] !== 0x54 || buf[from + 2] !== 0x54 || buf[from + 3] !== 0x50 || // HTTP
      buf[from + 4] !== 0x2f || buf[from + 5] !== 0x31 || buf[from + 6] !== 0x2e || // /1.
      (buf[from + 7] !== 0x31 && buf[from + 7] !== 0x30) ||
      buf[from + 8] !== 0x20 ||
      (n > 12 && buf[from + 12] !== 0x20)
    ) {
      throw new ParseError(`malformed status line: ${JSON.stringify(head.slice(0, Math.min(n, 64)))}`);
    }
    const d0 = buf[from + 9]! - 0x30;
    const d1 = buf[from + 10]! - 0x30;
    const d2 = buf[from + 11]! - 0x30;
    if (d0 < 0 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) {
      throw new ParseError(`malformed status code: ${JSON.stringify(head.slice(9, 12))}`);
    }
    const status = d0 * 100 + d1 * 10 + d2;
    if (status < 100) throw new ParseError(`status code out of range: ${status}`);
    let octets = false;
    let reason = '';
    if (n > 13) {
      const v = scanValue(buf, from + 13, eol);
      if (v < 0) throw new ParseError('malformed reason phrase');
      octets = v === 1;
      reason = head.slice(13, n);
    }
    const http10 = buf[from + 7] === 0x30;

    const headers: string[] = [];
    let contentLength = -1;
    let chunked = false;
    let transferEncoding = false;
    let closeToken = false;
    let keepAliveToken = false;
    let start = eol + 2;
    while (start < to) {
      eol = lineEnd(buf, start, to);
      // field-name: a token, up to the colon.
      let i = start;
      let upper = false;
      let c = 0;
      while (i < eol && (c = buf[i]!) !== 0x3a) {
        if (TOKEN_OCTET[c] === 0) break;
        if (c <= 0x5a && c >= 0x41) upper = true;
        i++;
      }
      if (i === start || i === eol || c !== 0x3a) {
        const line = head.slice(start - from, eol - from);
        const colon = line.indexOf(':');
        if (colon <= 0) throw new ParseError(`malformed header line: ${JSON.stringify(line.slice(0, 64))}`);
        throw new ParseError(`malformed header name: ${JSON.stringify(line.slice(0, Math.min(colon, 64)))}`);
      }
      const name = knownName(buf, start, i) ?? (upper ? head.slice(start - from, i - from).toLowerCase() : head.slice(start - from, i - from));
      // Optional whitespace (SP / HTAB) only around the value: trim() would also strip a bare CR or
      // LF at the edges, accepting a line that a lenient reader elsewhere would split differently.
      let vs = i + 1;
      let ve = eol;
      while (vs < ve && ((c = buf[vs]!) === 0x20 || c === 0x09)) vs++;
      while (ve > vs && ((c = buf[ve - 1]!) === 0x20 || c === 0x09)) ve--;
      const kind = scanValue(buf, vs, ve);
      if (kind < 0) throw new ParseError(`malformed value in header ${head.slice(start - from, i - from)}`);
      if (kind === 1) octets = true;
      start = eol + 2;
      // Only the framing headers are interpreted here; the rest is the forwarder's business.
      if (name === 'content-length') {
        let length = 0;
        for (let k = vs; k < ve; k++) {
          const digit = buf[k]! - 0x30;
          if (digit < 0 || digit > 9) {
            length = -1;
            break;
          }
          length = length * 10 + digit;
        }
        if (length < 0 || vs === ve || ve - vs > 15) throw new ParseError(`bad content-length: ${JSON.stringify(head.slice(vs - from, ve - from))}`);
        if (contentLength >= 0 && contentLength !== length) throw new ParseError('differing content-length headers');
        contentLength = length;
        headers.push(name, head.slice(vs - from, ve - from));
        continue;
      }
      const value = head.slice(vs - from, ve - from);
      headers.push(name, value);
      if (name === 'transfer-encoding') {
        transferEncoding = true;
        const last = value.slice(value.lastIndexOf(',') + 1).trim().toLowerCase();
        chunked = last === 'chunked';
      } else if (name === 'connection') {
        const v = value.toLowerCase();
        if (v.includes('close')) closeToken = true;
        else if (v.includes('keep-alive')) keepAliveToken = true;
      }
    }

    if (status < 200) {
      if (status === 101) throw new ParseError('unexpected 101 Switching Protocols');
      // Interim response (100, 102, 103): read on to the final one.
      return;
    }

    // "close" wins wherever it appears, whatever other Connection headers say.
    this.#keepAlive = !closeToken && (!http10 || keepAliveToken);
    let framing: FramingKind;
    if (this.#noBody || status === 204 || status === 304) {
      framing = Framing.NONE;
      this.#state = S_DONE;
    } else if (transferEncoding) {
      // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, and such a message must not be
      // followed by another on the same connection.
      if (contentLength >= 0) this.#keepAlive = false;
      contentLength = -1;
      if (chunked) {
        framing = Framing.CHUNKED;
        this.#state = S_CHUNK_SIZE;
      } else {
        framing = Framing.CLOSE;
        this.#keepAlive = false;
        this.#state = S_CLOSE;
      }
    } else if (contentLength >= 0) {
      framing = Framing.LENGTH;
      this.#remaining = contentLength;
      this.#state = contentLength === 0 ? S_DONE : S_LENGTH;
    } else {
      framing = Framing.CLOSE;
      this.#keepAlive = false;
      this.#state = S_CLOSE;
    }
    this.#sink!.onHead(status, reason, headers, framing, contentLength, octets);
  }

  /** Accumulates one CRLF-terminated line into #line; returns the offset after it or -1. */
  #readLine(buf: Buffer, off: number): number {
    const nl = buf.indexOf(10, off);
    const stop = nl < 0 ? buf.length : nl + 1;
    this.#line += latin1Slice.call(buf, off, stop);
    if (this.#line.length > MAX_LINE_BYTES) throw new ParseError('chunk-size or trailer line too long');
    if (nl < 0) return -1;
    if (this.#line.length < 2 || this.#line.charCodeAt(this.#line.length - 2) !== 13) {
      throw new ParseError('bare LF in chunked framing');
    }
    this.#line = this.#line.slice(0, -2);
    // A CR that does not end the line is never framing; refuse it rather than trim or ignore it.
    if (this.#line.includes('\r')) throw new ParseError('bare CR in chunked framing');
    return stop;
  }

  #chunkSize(line: string): void {
    const semi = line.indexOf(';');
    // BWS may precede an extension's ';' (SP / HTAB only); nothing may precede the size.
    let end = semi < 0 ? line.length : semi;
    while (end > 0 && (line.charCodeAt(end - 1) === 32 || line.charCodeAt(end - 1) === 9)) end--;
    const hex = line.slice(0, end);
    if (!HEX.test(hex) || hex.length > MAX_CHUNK_HEX_DIGITS) throw new ParseError(`bad chunk size: ${JSON.stringify(line.slice(0, 32))}`);
    const size = parseInt(hex, 16);
    if (size === 0) {
      this.#state = S_TRAILERS;
    } else {
      this.#remaining = size;
      this.#state = S_CHUNK_DATA;
    }
  }
}

/** `s.slice(start, end)` without leading and trailing SP / HTAB (RFC 9110 OWS). */
function trimOws(s: string, start: number, end: number): string {
  let c: number;
  while (start < end && ((c = s.charCodeAt(start)) === 32 || c === 9)) start++;
  while (end > start && ((c = s.charCodeAt(end - 1)) === 32 || c === 9)) end--;
  return s.slice(start, end);
}

/** 1 for the octets RFC 9110 allows in a token (header names), 0 for the rest. */
const TOKEN_OCTET = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TOKEN_OCTET[c.charCodeAt(0)] = 1;

/** Where the line starting at `i` ends: its CR (checked to be followed by LF), or `to`. */
function lineEnd(buf: Buffer, i: number, to: number): number {
  while (i < to && buf[i] !== 0x0d) i++;
  // A CR not followed by LF stays inside the line, where the value scan refuses it.
  while (i < to && buf[i + 1] !== 0x0a) {
    i++;
    while (i < to && buf[i] !== 0x0d) i++;
  }
  return i;
}

/** A value's octets: -1 if one is NUL, CR or LF; 1 if one is over 0x7F; else 0. */
function scanValue(buf: Buffer, from: number, to: number): number {
  let high = 0;
  for (let i = from; i < to; i++) {
    const c = buf[i]!;
    if (c >= 0x80) high = 1;
    else if (c === 0 || c === 0x0a || c === 0x0d) return -1;
  }
  return high;
}

/**
 * Common response header names, lower-case, by length. A name that matches one (in any case) is
 * returned as this constant instead of a new string: no allocation, and its hash is computed once
 * for every Set or Map lookup the forwarder makes with it.
 */
const KNOWN_NAMES: string[][] = [];
for (const name of [
  'age', 'date', 'etag', 'vary', 'server', 'expires', 'location', 'set-cookie', 'connection', 'keep-alive',
  'content-type', 'accept-ranges', 'cache-control', 'last-modified', 'content-length', 'content-encoding',
  'transfer-encoding', 'strict-transport-security',
]) {
  (KNOWN_NAMES[name.length] ??= []).push(name);
}

function knownName(buf: Buffer, from: number, to: number): string | undefined {
  const candidates = KNOWN_NAMES[to - from];
  if (candidates === undefined) return undefined;
  outer: for (let k = 0; k < candidates.length; k++) {
    const name = candidates[k]!;
    for (let i = from, j = 0; i < to; i++, j++) {
      let c = buf[i]!;
      if (c <= 0x5a && c >= 0x41) c |= 0x20;
      if (c !== name.charCodeAt(j)) continue outer;
    }
    return name;
  }
  return undefined;
}
