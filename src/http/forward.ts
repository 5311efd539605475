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
import { PROXY_REFUSAL, proxiedClient } from './proxy-header.js';
import type { ProxyContext } from './context.js';
import { C } from '../state/layout.js';
import { NO_HASH } from '../balancer/hash.js';
import type { PoolRuntime } from './pool-runtime.js';
import type { CompiledRoute } from '../model/compiled-route.js';
import type { CompiledRespond } from '../model/respond.js';
import type { CompiledRedirect } from '../model/redirect.js';
import { NO_ROUTE } from '../model/route-table.js';
import type { GatedExchange } from '../model/edge.js';
import { writeDenial } from '../edge/policy.js';

/** First retry waits about this long (jittered ±50%, doubling per further retry). */
const RETRY_BACKOFF_MS = 25;

/** Request body bytes held while waiting for a pooled connection before pausing the client. */
const PENDING_BODY_LIMIT = 256 * 1024;

/**
 * Request body bytes still read and thrown away after the exchange ended early (a 502, or a
 * backend that answered before the upload finished), so the client reads its answer instead of
 * stalling or being reset mid-upload; past this the connection is closed.
 */
const DISCARD_LIMIT = 1024 * 1024;

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

/** What a listener (uWS app) adds to its requests: one constant object per app, never per request. */
export interface Listener {
  /** X-Forwarded-Proto: 'http' or 'https'. */
  readonly proto: string;
  /** Strict-Transport-Security value for the TLS listener's responses; null = none. */
  readonly hsts: string | null;
}

/**
 * The uWS route handler. A throw that escaped a request handler before it had answered or attached
 * onAborted makes uWS abort the whole process, so a bug here must cost one request, not every
 * worker: answer 500 (or close, if the answer had begun) and log it.
 */
export function handle(ctx: ProxyContext, res: HttpResponse, req: HttpRequest, listener: Listener): void {
  try {
    forward(ctx, res, req, listener);
  } catch (err) {
    ctx.onInternalError(err as Error);
    try {
      res.cork(() => reject(res, 500, 'internal error'));
    } catch {
      try {
        res.close();
      } catch {
        /* already gone */
      }
    }
  }
}

/**
 * Entry point for every request (called from the uWS route handler, corked). The data path reads
 * top to bottom: listener (this call) → route (the compiled table) → the pool's policy (in the
 * exchange) → upstream client. Routes are matched on the request as sent (raw path, no dot-segment
 * resolution or percent-decoding: docs/routing.md).
 */
export function forward(ctx: ProxyContext, res: HttpResponse, req: HttpRequest, listener: Listener): void {
  const acceptProxy = listener.proto === 'https' ? ctx.acceptProxyTls : ctx.acceptProxyPlain;
  const proxied = proxiedClient(res, acceptProxy);
  if (proxied === PROXY_REFUSAL) return refuse(res, 400, acceptProxy ? 'PROXY protocol v2 header required' : 'PROXY protocol header not accepted here');
  const method = req.getCaseSensitiveMethod();
  const url = req.getUrl();
  const query = req.getQuery();
  const view = ctx.view.fill(req, method, url, query);
  const route = ctx.routes.match(view);
  const b = ctx.builder;
  const action = route === null ? null : route.action;
  if (action === null || action.kind === 'respond' || action.kind === 'redirect') {
    // Answered here: the request is checked by the same rules, but no head is built (and the
    // client's address, a getpeername away, is not needed).
    const ok = b.build(req, method, url, query, '', listener.proto, false, null);
    view.clear();
    if (!ok) return refuse(res, b.refusal === Refusal.HEAD_TOO_LARGE ? 431 : 400, refusalText(b.refusal));
    if (route === null) return noRoute(ctx, res, listener);
    ctx.countRoute(route.index);
    if (action!.kind === 'respond') return respond(ctx, res, action!.respond, method === 'HEAD', listener);
    return redirect(ctx, res, action!.redirect, listener, b.host, url, query);
  }
  const rt = ctx.runtime(action.kind === 'pool' ? action.pool : action.split.pick(view, Math.random()));
  const clientIp = proxied ?? clientAddress(res);
  const target = ctx.target;
  target.path = route!.rewrite === null ? url : route!.rewrite.rewrite(url);
  target.host = route!.hostRewrite;
  target.headers = route!.requestHeaders;
  const ok = b.build(req, method, url, query, clientIp, listener.proto, ctx.trusted(clientIp), target);
  view.clear();
  if (!ok) return refuse(res, b.refusal === Refusal.HEAD_TOO_LARGE ? 431 : 400, refusalText(b.refusal));
  ctx.countRoute(route!.index);
  if (rt === undefined) return reject(res, 503, 'route names an unknown pool');
  const overrides = route!.overrides;
  const maxBody = overrides.maxBodyBytes ?? rt.settings.maxBodyBytes;
  if (maxBody > 0 && b.bodyKind === BodyKind.LENGTH && b.contentLength > maxBody) {
    refuse(res, 413, 'request body too large');
    return;
  }
  if (ctx.draining) ctx.closeAfter = true;
  // Edge policy (src/edge): may answer here, or let the exchange start now or after its async checks.
  const gate = route!.edge;
  if (gate !== null && !gate.check(req, res, method, query, clientIp, ctx.trusted(clientIp), listener.proto)) return;
  const ex = new Exchange(ctx, rt, route!, maxBody, res, method, b, rt.needsHash ? rt.hashOf(req, clientIp) : NO_HASH, listener.hsts, clientIp);
  if (gate === null) ex.start();
  else gate.admit(ex);
}

/** No route matched: 404 with x-sluice-error: no-route. */
function noRoute(ctx: ProxyContext, res: HttpResponse, listener: Listener): void {
  res.writeStatus(NO_ROUTE.statusLine);
  if (listener.hsts !== null) res.writeHeader('strict-transport-security', listener.hsts);
  res.writeHeader('content-type', 'text/plain');
  res.writeHeader(NO_ROUTE.errorHeader, NO_ROUTE.errorValue);
  res.end('no route for this request\n', ctx.closeAfter);
}

/** A `respond` route: the configured status, headers and body, no backend involved. */
function respond(ctx: ProxyContext, res: HttpResponse, r: CompiledRespond, isHead: boolean, listener: Listener): void {
  res.writeStatus(r.statusLine);
  if (listener.hsts !== null) res.writeHeader('strict-transport-security', listener.hsts);
  for (let i = 0; i < r.headers.length; i++) res.writeHeader(r.headers[i]!.name, r.headers[i]!.value);
  if (ctx.closeAfter) res.writeHeader('connection', 'close');
  if (isHead || r.status === 204 || r.status === 304) {
    // endWithoutBody() with no argument: see onResponseStart for why the length goes in a header.
    if (isHead && r.status !== 204 && r.status !== 304) res.writeHeader('content-length', String(Buffer.byteLength(r.body)));
    res.endWithoutBody();
    return;
  }
  res.end(r.body);
}

/** A `redirect` route: its status and the Location built from the request. */
function redirect(ctx: ProxyContext, res: HttpResponse, r: CompiledRedirect, listener: Listener, host: string, path: string, query: string): void {
  res.writeStatus(r.statusLine);
  if (listener.hsts !== null) res.writeHeader('strict-transport-security', listener.hsts);
  res.writeHeader('location', r.location({ scheme: listener.proto === 'https' ? 'https' : 'http', host, path, query }));
  res.end('', ctx.closeAfter);
}

function noBackend(slot: number): UpstreamError {
  return slot === -2
    ? new UpstreamError('overloaded', 'every backend is at SLUICE_MAX_REQUESTS_PER_BACKEND', true)
    : new UpstreamError('unavailable', 'no backend available', true);
}

export function refusalText(refusal: number): string {
  switch (refusal) {
    case Refusal.DUPLICATE_HOST:
      return 'more than one Host header';
    case Refusal.CONFLICTING_LENGTH:
      return 'conflicting Content-Length headers';
    case Refusal.BAD_LENGTH:
      return 'malformed Content-Length';
    case Refusal.HEAD_TOO_LARGE:
      return 'request head larger than SLUICE_MAX_HEADER_BYTES';
    case Refusal.BAD_METHOD:
      return 'malformed method';
    case Refusal.BAD_TARGET:
      return 'request target with a control character, space or invalid UTF-8';
    case Refusal.BAD_HOST:
      return 'malformed Host';
    case Refusal.BAD_HEADER:
      return 'header with a control character or invalid UTF-8';
    default:
      return 'unsupported Transfer-Encoding';
  }
}

/**
 * Refuse a request and close its connection. The answer is written on the next turn, outside uWS's
 * parse loop: a response ended there with "close" does not stop uWS from routing a request that
 * was pipelined behind it in the same read (a smuggled one), whereas while this response is still
 * pending uWS drops the connection as soon as another request arrives. Cold path: a closure is fine.
 */
function refuse(res: HttpResponse, status: number, text: string): void {
  let gone = false;
  res.onAborted(() => {
    gone = true;
  });
  setImmediate(() => {
    if (!gone) res.cork(() => reject(res, status, text));
  });
}

/** Write a status Sluice generates itself, and close the connection after it. */
export function reject(res: HttpResponse, status: number, text: string): void {
  res.writeStatus(REASONS[status] ?? String(status));
  res.writeHeader('content-type', 'text/plain');
  res.end(text + '\n', true);
}

/** A response value with an octet over 0x7F (only looked for when the parser saw one). */
const HIGH_OCTET = /[\x80-\xff]/;

/** "gzip, chunked" → "gzip": the transfer codings a response carries besides chunked. */
function nonChunkedCodings(value: string): string {
  let out = '';
  for (const token of value.split(',')) {
    const coding = token.trim();
    if (coding === '' || coding.toLowerCase() === 'chunked') continue;
    out = out === '' ? coding : out + ', ' + coding;
  }
  return out;
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

export class Exchange implements ExchangeHandler, GatedExchange {
  readonly #ctx: ProxyContext;
  /** The pool this request is balanced over, and the route that chose it (both fixed at start). */
  readonly #rt: PoolRuntime;
  readonly #route: CompiledRoute;
  readonly #maxBody: number;
  readonly #retryLimit: number;
  /** Time to the first response byte (the route's timeout_ms, else the pool's). */
  readonly #timeoutMs: number;
  readonly #res: HttpResponse;
  readonly #method: string;
  // For the access log: references to strings the request built anyway.
  readonly #path: string;
  readonly #client: string;
  readonly #requestId: string;
  readonly #traceId: string;
  #bytesOut = 0;
  #head: string;
  readonly #isHead: boolean;
  readonly #bodyKind: BodyKindValue;
  readonly #idempotent: boolean;
  readonly #started = performance.now();
  /** When the request was handed to a backend connection (0 = not yet): upstream time starts here. */
  #dispatched = 0;
  /** Upstream time, dispatch to last response byte; -1 while there is no complete response. */
  #upstreamMs = -1;
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
  /** The client is gone (uWS onAborted): `#res` must not be touched again. */
  #aborted = false;
  /**
   * The client side is finished: gone, or answered by Sluice itself (413, 502...). Every callback
   * that could start upstream work (a retry's timer, a pool handing over a connection, a response
   * byte) checks this one state first; the pool reads it as `cancelled`.
   */
  #over = false;
  /** Body bytes thrown away after the exchange ended early (see DISCARD_LIMIT). */
  #discarded = 0;
  #headSent = false;
  #finished = false;
  #accounted = false;
  #retried = false;
  #reused = false;
  readonly #hash: number;
  readonly #hsts: string | null;
  /** Retries to another backend so far. */
  #retries = 0;
  #status = 0;
  #framing: FramingKind = Framing.NONE;
  #total = 0;
  /** A body piece uWS could not take yet (tryEnd backpressure), and the write offset it starts at. */
  #out: Buffer | null = null;
  #outOffset = 0;
  #writableSet = false;
  /** Edge policy: response headers to add (CORS), and what to run when the request ends. */
  #edgeHeaders: readonly string[] | null = null;
  #edgeDone: (() => void) | null = null;
  /** Counted in ctx.inFlight while an asynchronous edge check runs (a drain waits for it). */
  #held = false;

  constructor(
    ctx: ProxyContext,
    rt: PoolRuntime,
    route: CompiledRoute,
    maxBody: number,
    res: HttpResponse,
    method: string,
    b: RequestHeadBuilder,
    hash: number,
    hsts: string | null,
    client: string,
  ) {
    this.#ctx = ctx;
    this.#rt = rt;
    this.#route = route;
    this.#maxBody = maxBody;
    this.#retryLimit = route.overrides.retries ?? rt.settings.retries;
    this.#timeoutMs = route.overrides.requestTimeoutMs ?? rt.settings.requestTimeoutMs;
    this.#path = b.path;
    this.#client = client;
    this.#requestId = b.requestId;
    this.#traceId = b.traceId;
    this.#hash = hash;
    this.#hsts = hsts;
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

  get cancelled(): boolean {
    return this.#over;
  }

  /** See ExchangeHandler: only a bodiless GET or HEAD may ride behind another on one connection. */
  get pipelineDepth(): number {
    return this.#bodyKind === BodyKind.NONE && (this.#method === 'GET' || this.#isHead) ? this.#rt.settings.upstreamPipeline : 1;
  }

  start(): void {
    if (this.#over) return;
    const slot = this.#rt.pick(-1, this.#hash);
    if (slot < 0) {
      this.#respondError(noBackend(slot));
      return this.#unhold();
    }
    this.#slot = slot;
    this.#ctx.onStart(this.#rt, slot);
    this.#pool = this.#ctx.pools[slot]!;
    this.#pool.acquire(this);
    this.#unhold();
  }

  // Edge policy (GatedExchange): see src/edge/policy.ts.

  wait(): void {
    this.#held = true;
    this.#ctx.inFlight++;
  }

  #unhold(): void {
    if (!this.#held) return;
    this.#held = false;
    const ctx = this.#ctx;
    if (--ctx.inFlight === 0 && ctx.onIdle !== null) ctx.onIdle();
  }

  resume(): void {
    if (!this.#over) this.#res.cork(() => this.start());
  }

  appendRequestHeaders(lines: string): void {
    // Before the blank line that ends the head.
    this.#head = this.#head.slice(0, -2) + lines + '\r\n';
  }

  addResponseHeaders(pairs: readonly string[]): void {
    this.#edgeHeaders = pairs;
  }

  onFinish(fn: () => void): void {
    this.#edgeDone = fn;
  }

  deny(status: number, headers: readonly string[], body: string): void {
    if (!this.#answerOwn()) return;
    const res = this.#res;
    const close = this.#ctx.closeAfter || !this.#bodyDone;
    res.cork(() => {
      if (this.#clientPaused) this.#resumeClient();
      writeDenial(res, { ok: false, status, headers, body }, this.#edgeHeaders);
      if (this.#hsts !== null) res.writeHeader('strict-transport-security', this.#hsts);
      res.end(body, close);
    });
    this.#account(status);
  }

  /**
   * After a connect failure or reset before any response byte: may this request go to another
   * backend? Only idempotent ones whose body has not started, within SLUICE_RETRIES and the budget.
   */
  #mayRetry(err: UpstreamError): boolean {
    return (
      err.beforeResponse &&
      (err.kind === 'connect' || err.kind === 'reset') &&
      this.#idempotent &&
      !this.#bodySent &&
      this.#retries < this.#retryLimit &&
      this.#rt.takeRetry()
    );
  }

  #retryElsewhere(): void {
    const ctx = this.#ctx;
    this.#retries++;
    const next = this.#repick();
    if (next < 0) {
      this.#res.cork(() => this.#respondError(noBackend(next)));
      return;
    }
    ctx.moveSlot(this.#slot, next);
    this.#slot = next;
    this.#pool = ctx.pools[next]!;
    this.#reused = false;
    // Jittered exponential backoff: retries of many requests failing together don't land together.
    const delay = RETRY_BACKOFF_MS * 2 ** (this.#retries - 1) * (0.5 + Math.random());
    setTimeout(() => {
      if (!this.#over) this.#pool!.acquire(this);
    }, delay);
  }

  /**
   * Another backend of this request's pool, as the pool is now: a reload may have replaced its
   * runtime (and members) since the request started, and a slot that left has no connection pool.
   */
  #repick(): number {
    const rt = this.#ctx.runtime(this.#rt.name) ?? this.#rt;
    const next = rt.pick(this.#slot, this.#hash);
    return next >= 0 && this.#ctx.pools[next] === undefined ? -1 : next;
  }

  // ExchangeHandler

  onConnection(conn: Connection): void {
    if (this.#over) {
      // Finished while queued or connecting: hand the connection straight back, unused.
      this.#pool!.release(conn, true);
      return;
    }
    this.#conn = conn;
    this.#reused = conn.uses > 0;
    this.#dispatched = performance.now();
    conn.dispatch(this, this.#head, this.#isHead, this.#bodyKind !== BodyKind.NONE, this.#timeoutMs);
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
    if (this.#over) return;
    const pool = this.#pool;
    if (pool !== null && pool.closing) {
      // Its backend left the pool (reload) while this request queued: it never reached the
      // backend, so it may go to another one whatever its method.
      const next = this.#repick();
      if (next >= 0 && this.#ctx.pools[next] !== pool) {
        this.#ctx.moveSlot(this.#slot, next);
        this.#slot = next;
        this.#pool = this.#ctx.pools[next]!;
        this.#pool.acquire(this);
        return;
      }
    }
    this.#res.cork(() => this.#respondError(new UpstreamError('overloaded', 'no backend connection became free (pool full or wait timed out)', true)));
  }

  onResponseStart(status: number, reason: string, headers: string[], framing: FramingKind, contentLength: number, octets: boolean): void {
    if (this.#over) return;
    this.#status = status;
    this.#framing = framing;
    this.#total = contentLength;
    // Latency sample for peak EWMA: dispatch to response head, the backend's own time (pool waits
    // and retries are ours, not its).
    this.#rt.onResponseStart(this.#slot, performance.now() - this.#dispatched, status);
    const res = this.#res;
    this.#headSent = true;
    // Values are latin1 strings (one character per octet): uWS would encode a string as UTF-8,
    // so any with an octet over 0x7F goes back as those octets (a Buffer), never re-encoded.
    res.writeStatus(octets ? Buffer.from(statusLine(status, reason), 'latin1') : statusLine(status, reason));
    if (this.#hsts !== null) res.writeHeader('strict-transport-security', this.#hsts);
    const edits = this.#route.responseHeaders;
    // Headers named by Connection are hop-by-hop too; most backends name none beyond keep-alive.
    let named: Set<string> | null = null;
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i] === 'connection') named = connectionNamed(headers[i + 1]!, named);
    }
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (RESPONSE_DROP.has(name) || (named !== null && named.has(name))) {
        // Transfer codings other than chunked (gzip, chunked) are the body's encoding: keep their
        // label. uWS adds its own "chunked" after it, which lists the codings in order.
        if (name === 'transfer-encoding') {
          const codings = nonChunkedCodings(headers[i + 1]!);
          if (codings !== '' && framing === Framing.CHUNKED) res.writeHeader(name, codings);
        }
        continue;
      }
      if (!edits.empty && edits.drops.has(name)) continue;
      const value = headers[i + 1]!;
      res.writeHeader(name, octets && HIGH_OCTET.test(value) ? Buffer.from(value, 'latin1') : value);
    }
    // The route's response header edits: set/add after the backend's own (set ones were dropped).
    for (let i = 0; i < edits.append.length; i++) res.writeHeader(edits.append[i]!.name, edits.append[i]!.value);
    const edge = this.#edgeHeaders;
    if (edge !== null) for (let i = 0; i < edge.length; i += 2) res.writeHeader(edge[i]!, edge[i + 1]!);
    // Ask the client to close after this response when draining, or when the backend answered
    // before the upload finished (the rest of the body is read and thrown away, within a bound).
    // It has to be a header written now: this uWS build's end(body, true) after write() puts
    // "Connection: close" inside the chunked body, and tryEnd() has no way to ask.
    if (this.#ctx.closeAfter || !this.#bodyDone) res.writeHeader('connection', 'close');
    if (framing === Framing.NONE) {
      this.#finished = true;
      // HEAD and 304 report the length the body would have had, as the backend sent it; a 204
      // carries none. Always endWithoutBody() with no arguments: in this uWS build a length
      // argument leaves the response pending (the connection is dropped at the client's next
      // request) and an explicit `undefined` becomes "Content-Length: 9223372036854775808".
      // So the length goes in as a header.
      if (contentLength >= 0 && status !== 204) res.writeHeader('content-length', String(contentLength));
      res.endWithoutBody();
    }
  }

  onResponseData(chunk: Buffer): boolean {
    this.#bytesOut += chunk.length;
    if (this.#over || this.#finished) return true;
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
      // A copy: `chunk` is a view of the connection's read buffer, reused by the next read.
      this.#out = Buffer.from(chunk);
      this.#outOffset = offset;
      this.#needWritable();
      return false;
    }
    return true;
  }

  onResponseEnd(): void {
    this.#conn = null;
    const now = performance.now();
    this.#upstreamMs = now - this.#dispatched;
    // Answered before the upload finished: let the rest of the body in (and away), so the client
    // is not left paused on a connection nothing reads.
    if (!this.#bodyDone && this.#clientPaused && !this.#aborted) this.#resumeClient();
    if (!this.#over && !this.#finished) {
      if (this.#framing === Framing.LENGTH) {
        // Only a zero-length body reaches here without tryEnd having finished the response, or a
        // piece still waiting for onWritable (that path ends the response itself).
        if (this.#out === null) {
          this.#finished = true;
          this.#res.end();
        }
      } else {
        this.#finished = true;
        this.#res.end();
      }
    }
    this.#account(this.#status, now);
  }

  onResponseError(err: UpstreamError): void {
    this.#conn = null;
    if (this.#over) return;
    if (!this.#headSent) {
      // A reused keep-alive socket the backend had already closed: try once more on a fresh one,
      // when the request is safe to repeat and no body byte has left.
      if (!this.#retried && this.#reused && err.beforeResponse && err.kind === 'reset' && this.#idempotent && !this.#bodySent) {
        this.#retried = true;
        this.#ctx.table.add(C.RETRIES, this.#slot, 1);
        this.#pool!.fresh(this);
        return;
      }
      this.#rt.onUpstreamError(this.#slot, err);
      if (this.#mayRetry(err)) return this.#retryElsewhere();
      this.#res.cork(() => this.#respondError(err));
      return;
    }
    // Mid-response: the only honest signal left is to cut the client connection.
    this.#rt.onUpstreamError(this.#slot, err);
    this.#account(502);
    this.#finished = true;
    this.#over = true;
    this.#res.close();
  }

  onRequeue(): void {
    this.#conn = null;
    if (this.#over) return;
    // Counted with the retries (the request goes out again), not against the backend's health.
    this.#ctx.table.add(C.RETRIES, this.#slot, 1);
    this.#pool!.acquire(this);
  }

  onRequestDrain(): void {
    if (this.#clientPaused && !this.#over) this.#resumeClient();
  }

  cork(fn: () => void): void {
    // Once the client side is over nothing is written to it: never cork a finished response.
    if (this.#over) fn();
    else this.#res.cork(fn);
  }

  // Client side

  #onClientData(ab: ArrayBuffer, isLast: boolean): void {
    if (this.#aborted) return;
    const n = ab.byteLength;
    this.#bodyReceived += n;
    if (isLast) this.#bodyDone = true;
    if (this.#over || this.#finished) {
      // Answered already: the rest of the body is read and thrown away, within a bound.
      this.#discarded += n;
      if (this.#discarded > DISCARD_LIMIT && !isLast) {
        this.#over = true;
        this.#res.close();
      }
      return;
    }
    const max = this.#maxBody;
    if (max > 0 && this.#bodyReceived > max) {
      // A chunked body has no declared length, so the limit can only be enforced as it arrives.
      // Once the backend's answer has started it stands: the excess is only not forwarded.
      if (this.#headSent) return;
      this.#over = true;
      this.#abandonUpstream();
      this.#headSent = true;
      this.#finished = true;
      // Not inside this data callback: see refuse() (more of the read may follow it).
      setImmediate(() => {
        if (!this.#aborted) this.#res.cork(() => reject(this.#res, 413, 'request body too large'));
      });
      this.#account(413);
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
    if (isLast && this.#conn !== null && this.#pending === null) this.#conn.endBody(chunked);
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
    if (this.#over) return true;
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
    this.#over = true;
    // Account first: once the upstream socket closes, the backend (and anyone watching it) can
    // see the abort, and the shared counts must already say the request is gone.
    if (!this.#finished) this.#account(499);
    this.#abandonUpstream();
  }

  /** The client is gone or refused: the upstream exchange is void, its socket unusable. */
  #abandonUpstream(): void {
    const conn = this.#conn;
    this.#conn = null;
    if (conn !== null) conn.abandon(this);
  }

  /**
   * Sluice answers this request itself (an edge denial, an upstream error): false when an answer
   * has already begun or the client side is over; otherwise the exchange is marked finished.
   */
  #answerOwn(): boolean {
    if (this.#over || this.#headSent) return false;
    this.#headSent = true;
    this.#finished = true;
    this.#over = true;
    return true;
  }

  #respondError(err: UpstreamError): void {
    if (!this.#answerOwn()) return;
    const res = this.#res;
    // Mid-upload: the connection closes after this answer (the body's end never comes to a
    // message boundary we could reuse), and a paused client is let go so it can read it.
    const close = this.#ctx.closeAfter || !this.#bodyDone;
    if (this.#clientPaused) this.#resumeClient();
    res.writeStatus(REASONS[err.status] ?? String(err.status));
    if (this.#hsts !== null) res.writeHeader('strict-transport-security', this.#hsts);
    res.writeHeader('content-type', 'text/plain');
    res.writeHeader('x-sluice-error', err.kind);
    if (err.status === 503) res.writeHeader('retry-after', '1');
    const edge = this.#edgeHeaders;
    if (edge !== null) for (let i = 0; i < edge.length; i += 2) res.writeHeader(edge[i]!, edge[i + 1]!);
    res.end(err.message + '\n', close);
    this.#account(err.status);
  }

  /** Exactly once per request: release the slot and count the outcome. */
  #account(status: number, now = performance.now()): void {
    if (this.#accounted) return;
    this.#accounted = true;
    if (this.#edgeDone !== null) this.#edgeDone();
    this.#unhold();
    const totalMs = now - this.#started;
    if (this.#slot >= 0) this.#ctx.onDone(this.#slot, status, totalMs, this.#upstreamMs);
    const log = this.#ctx.accessLog;
    if (log !== null && log.sampled()) {
      const pool = this.#pool;
      log.write({
        requestId: this.#requestId,
        traceId: this.#traceId,
        client: this.#client,
        method: this.#method,
        path: this.#path,
        status,
        bytesIn: this.#bodyReceived,
        bytesOut: this.#bytesOut,
        backend: pool === null ? '' : pool.host + ':' + pool.port,
        upstreamMs: this.#upstreamMs < 0 ? -1 : Math.round(this.#upstreamMs * 1000) / 1000,
        totalMs: Math.round(totalMs * 1000) / 1000,
        retries: this.#retries + (this.#retried ? 1 : 0),
      });
    }
  }

}
