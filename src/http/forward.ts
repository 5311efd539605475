// One request's life in a worker: pick a backend, borrow a pooled connection, stream the body up
// and the response down with backpressure both ways, account for it once, and turn every upstream
// failure into one clear status.

import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { performance } from 'node:perf_hooks';
import { UpstreamError, REASONS } from '../upstream/errors.js';
import { Framing, type FramingKind } from '../upstream/response-parser.js';
import type { Connection } from '../upstream/connection.js';
import type { ExchangeHandler } from '../upstream/exchange.js';
import type { Pool } from '../upstream/pool.js';
import { BodyKind, Refusal, RESPONSE_DROP, RequestHeadBuilder, type BodyKindValue } from './request-head.js';
import { clientAddress } from './client-address.js';
import type { ProxyContext } from './context.js';
import { C } from '../state/layout.js';

/** Request body bytes held while waiting for a pooled connection before pausing the client. */
const PENDING_BODY_LIMIT = 256 * 1024;

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

const statusLines = new Map<number, string>();
/** "200 OK": cached per status when the backend uses the usual reason phrase. */
function statusLine(status: number, reason: string): string {
  const cached = statusLines.get(status);
  if (cached !== undefined && cached.length === reason.length + 4 && cached.endsWith(reason)) return cached;
  const line = reason === '' ? String(status) : status + ' ' + reason;
  if (cached === undefined && statusLines.size < 64) statusLines.set(status, line);
  return line;
}

/** Entry point for every proxied request (called from the uWS route handler, corked). */
export function forward(ctx: ProxyContext, res: HttpResponse, req: HttpRequest): void {
  const method = req.getCaseSensitiveMethod();
  const clientIp = clientAddress(res);
  const b = ctx.builder;
  if (!b.build(req, method, clientIp, ctx.proto, ctx.trusted(clientIp))) {
    reject(res, 400, refusalText(b.refusal));
    return;
  }
  if (ctx.maxBodyBytes > 0 && b.bodyKind === BodyKind.LENGTH && b.contentLength > ctx.maxBodyBytes) {
    reject(res, 413, 'request body too large');
    return;
  }
  if (ctx.draining) ctx.closeAfter = true;
  const ex = new Exchange(ctx, res, method, b);
  ex.start();
}

function refusalText(refusal: number): string {
  switch (refusal) {
    case Refusal.DUPLICATE_HOST:
      return 'more than one Host header';
    case Refusal.CONFLICTING_LENGTH:
      return 'conflicting Content-Length headers';
    case Refusal.BAD_LENGTH:
      return 'malformed Content-Length';
    default:
      return 'unsupported Transfer-Encoding';
  }
}

/** Answer with a status Sluice generates itself; the connection is closed after a 400. */
function reject(res: HttpResponse, status: number, text: string): void {
  res.writeStatus(REASONS[status] ?? String(status));
  res.writeHeader('content-type', 'text/plain');
  res.end(text + '\n', status === 400 || status === 413);
}

/** Adds the header names a Connection value lists, other than the connection options themselves. */
function connectionNamed(value: string, into: Set<string> | null): Set<string> | null {
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === '' || name === 'close' || name === 'keep-alive') continue;
    (into ??= new Set()).add(name);
  }
  return into;
}

export class Exchange implements ExchangeHandler {
  readonly #ctx: ProxyContext;
  readonly #res: HttpResponse;
  readonly #method: string;
  readonly #head: string;
  readonly #isHead: boolean;
  readonly #bodyKind: BodyKindValue;
  readonly #idempotent: boolean;
  readonly #started = performance.now();
  #slot = -1;
  #pool: Pool | null = null;
  #conn: Connection | null = null;
  /** Body pieces received before a connection was attached. */
  #pending: Buffer[] | null = null;
  #pendingBytes = 0;
  #bodyReceived = 0;
  #bodyDone = true;
  #bodySent = false;
  #clientPaused = false;
  #aborted = false;
  #headSent = false;
  #finished = false;
  #accounted = false;
  #retried = false;
  #reused = false;
  #status = 0;
  #framing: FramingKind = Framing.NONE;
  #total = 0;
  /** A body piece uWS could not take yet (tryEnd backpressure), and the write offset it starts at. */
  #out: Buffer | null = null;
  #outOffset = 0;
  #writableSet = false;
  cancelled = false;

  constructor(ctx: ProxyContext, res: HttpResponse, method: string, b: RequestHeadBuilder) {
    this.#ctx = ctx;
    this.#res = res;
    this.#method = method;
    this.#head = b.head;
    this.#isHead = method === 'HEAD';
    this.#bodyKind = b.bodyKind;
    this.#idempotent = IDEMPOTENT.has(method);
    res.onAborted(() => this.#onAborted());
    if (b.bodyKind !== BodyKind.NONE) {
      this.#bodyDone = false;
      res.onData((chunk, isLast) => this.#onClientData(chunk, isLast));
    }
  }

  start(): void {
    const ctx = this.#ctx;
    const slot = ctx.pick(-1);
    if (slot < 0) return this.#respondError(new UpstreamError('unavailable', 'no backend available', true));
    this.#slot = slot;
    ctx.onStart(slot);
    const pool = ctx.pools[slot]!;
    this.#pool = pool;
    pool.acquire(this);
  }

  // ExchangeHandler

  onConnection(conn: Connection): void {
    if (this.#aborted) {
      // Gave up while queued: hand the connection straight back.
      this.#pool!.release(conn, true);
      return;
    }
    this.#conn = conn;
    this.#reused = conn.uses > 0;
    conn.dispatch(this, this.#head, this.#isHead, this.#bodyKind !== BodyKind.NONE);
    const pending = this.#pending;
    if (pending !== null) {
      this.#pending = null;
      let ok = true;
      for (const piece of pending) ok = conn.writeBody(piece, this.#bodyKind === BodyKind.CHUNKED);
      this.#bodySent = true;
      if (!ok) this.#pauseClient();
      else if (this.#clientPaused) this.#resumeClient();
    }
    if (this.#bodyDone && this.#bodyKind !== BodyKind.NONE) conn.endBody(this.#bodyKind === BodyKind.CHUNKED);
  }

  onPoolFull(): void {
    this.#respondError(new UpstreamError('overloaded', 'backend connection pool is full', true));
  }

  onResponseStart(status: number, reason: string, headers: string[], framing: FramingKind, contentLength: number): void {
    if (this.#aborted) return;
    this.#status = status;
    this.#framing = framing;
    this.#total = contentLength;
    this.#ctx.onResponseStart(this.#slot, performance.now() - this.#started, status);
    const res = this.#res;
    this.#headSent = true;
    res.writeStatus(statusLine(status, reason));
    // Headers named by Connection are hop-by-hop too; most backends name none beyond keep-alive.
    let named: Set<string> | null = null;
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i] === 'connection') named = connectionNamed(headers[i + 1]!, named);
    }
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (RESPONSE_DROP.has(name) || (named !== null && named.has(name))) continue;
      res.writeHeader(name, headers[i + 1]!);
    }
    if (framing === Framing.NONE) {
      this.#finished = true;
      if (this.#isHead && status !== 204 && status !== 304 && contentLength >= 0) {
        res.endWithoutBody(contentLength, this.#ctx.closeAfter);
      } else {
        res.endWithoutBody(undefined, this.#ctx.closeAfter);
      }
    } else if (this.#ctx.closeAfter && framing === Framing.LENGTH) {
      // Draining: a streamed (chunked) response can be ended with "close", a tryEnd one cannot.
      this.#framing = Framing.CHUNKED;
    }
  }

  onResponseData(chunk: Buffer): boolean {
    if (this.#aborted || this.#finished) return true;
    const res = this.#res;
    if (this.#framing !== Framing.LENGTH) {
      if (!res.write(chunk)) {
        this.#needWritable();
        return false;
      }
      return true;
    }
    if (this.#out !== null) {
      // Already waiting on the client: keep the bytes in order behind the stuck piece.
      this.#out = Buffer.concat([this.#out, chunk]);
      return false;
    }
    const offset = res.getWriteOffset();
    const [ok, done] = res.tryEnd(chunk, this.#total);
    if (done) {
      this.#finished = true;
      return true;
    }
    if (!ok) {
      this.#out = chunk;
      this.#outOffset = offset;
      this.#needWritable();
      return false;
    }
    return true;
  }

  onResponseEnd(): void {
    this.#conn = null;
    if (!this.#aborted && !this.#finished) {
      if (this.#framing === Framing.LENGTH) {
        // Only a zero-length body reaches here without tryEnd having finished the response, or a
        // piece still waiting for onWritable (that path ends the response itself).
        if (this.#out === null) {
          this.#finished = true;
          this.#res.end(undefined, this.#ctx.closeAfter);
        }
      } else {
        this.#finished = true;
        this.#res.end(undefined, this.#ctx.closeAfter);
      }
    }
    this.#account(this.#status);
  }

  onResponseError(err: UpstreamError): void {
    this.#conn = null;
    if (this.#aborted) return;
    if (!this.#headSent) {
      // A reused keep-alive socket the backend had already closed: try once more on a fresh one,
      // when the request is safe to repeat and no body byte has left.
      if (!this.#retried && this.#reused && err.beforeResponse && err.kind === 'reset' && this.#idempotent && !this.#bodySent) {
        this.#retried = true;
        this.#ctx.table.add(C.RETRIES, this.#slot, 1);
        this.#pool!.fresh(this);
        return;
      }
      this.#ctx.onUpstreamError(this.#slot, err);
      this.#res.cork(() => this.#respondError(err));
      return;
    }
    // Mid-response: the only honest signal left is to cut the client connection.
    this.#ctx.onUpstreamError(this.#slot, err);
    this.#account(502);
    this.#finished = true;
    this.#res.close();
  }

  onRequestDrain(): void {
    if (this.#clientPaused && !this.#aborted) this.#resumeClient();
  }

  cork(fn: () => void): void {
    if (this.#aborted) fn();
    else this.#res.cork(fn);
  }

  // Client side

  #onClientData(ab: ArrayBuffer, isLast: boolean): void {
    if (this.#aborted) return;
    const n = ab.byteLength;
    this.#bodyReceived += n;
    const max = this.#ctx.maxBodyBytes;
    if (max > 0 && this.#bodyReceived > max) {
      // A chunked body has no declared length, so the limit can only be enforced as it arrives.
      if (!this.#headSent) {
        this.cancelled = true;
        this.#abandonUpstream();
        this.#headSent = true;
        this.#finished = true;
        this.#res.cork(() => reject(this.#res, 413, 'request body too large'));
        this.#account(413);
      }
      return;
    }
    const chunked = this.#bodyKind === BodyKind.CHUNKED;
    if (n > 0) {
      // uWS neuters the ArrayBuffer when this callback returns: copy what we keep.
      const piece = Buffer.copyBytesFrom(new Uint8Array(ab));
      const conn = this.#conn;
      if (conn !== null) {
        this.#bodySent = true;
        if (!conn.writeBody(piece, chunked)) this.#pauseClient();
      } else if (!this.#finished) {
        (this.#pending ??= []).push(piece);
        this.#pendingBytes += n;
        if (this.#pendingBytes > PENDING_BODY_LIMIT) this.#pauseClient();
      }
    }
    if (isLast) {
      this.#bodyDone = true;
      if (this.#conn !== null && this.#pending === null) this.#conn.endBody(chunked);
    }
  }

  #pauseClient(): void {
    if (!this.#clientPaused) {
      this.#clientPaused = true;
      this.#res.pause();
    }
  }
  #resumeClient(): void {
    this.#clientPaused = false;
    this.#res.resume();
  }

  #needWritable(): void {
    if (this.#writableSet) return;
    this.#writableSet = true;
    this.#res.onWritable((offset) => this.#onWritable(offset));
  }

  #onWritable(offset: number): boolean {
    if (this.#aborted) return true;
    const out = this.#out;
    if (out === null) {
      // write() mode: uWS holds the bytes; we only waited for it to want more.
      this.#conn?.resume();
      return true;
    }
    const [ok, done] = this.#res.tryEnd(out.subarray(offset - this.#outOffset), this.#total);
    if (done) {
      this.#out = null;
      this.#finished = true;
      this.#conn?.resume();
      return true;
    }
    if (ok) {
      this.#out = null;
      this.#conn?.resume();
    }
    return ok;
  }

  #onAborted(): void {
    this.#aborted = true;
    this.cancelled = true;
    this.#abandonUpstream();
    if (!this.#finished) this.#account(499);
  }

  /** The client is gone or refused: the upstream exchange is void, its socket unusable. */
  #abandonUpstream(): void {
    const conn = this.#conn;
    this.#conn = null;
    if (conn !== null) conn.destroy();
  }

  #respondError(err: UpstreamError): void {
    if (this.#aborted || this.#headSent) return;
    this.#headSent = true;
    this.#finished = true;
    const res = this.#res;
    res.writeStatus(REASONS[err.status] ?? String(err.status));
    res.writeHeader('content-type', 'text/plain');
    res.writeHeader('x-sluice-error', err.kind);
    if (err.status === 503) res.writeHeader('retry-after', '1');
    res.end(err.message + '\n', this.#ctx.closeAfter);
    this.#account(err.status);
  }

  /** Exactly once per request: release the slot and count the outcome. */
  #account(status: number): void {
    if (this.#accounted) return;
    this.#accounted = true;
    if (this.#slot >= 0) this.#ctx.onDone(this.#slot, status);
  }

}
