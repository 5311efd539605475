// One keep-alive HTTP/1.1 connection to a backend. It carries one exchange at a time, except that a
// pool with `pipeline` > 1 (the default; docs/performance.md) may write further bodiless GET/HEAD
// requests behind the one being answered; their responses come back in order and are handed out
// one after another. A request pipelined behind a slow response would inherit its latency, so
// pipeline-guard.ts bounds that wait: past the pool's bound the queued requests go out again on
// other connections (`hedge`), and this connection closes when their turn comes here.

import type tls from 'node:tls';
import { UpstreamError } from './errors.js';
import { ParseError, ResponseParser, type FramingKind, type ResponseSink } from './response-parser.js';
import type { ExchangeHandler } from './exchange.js';
import type { Transport, TransportSink } from './transport.js';
import { RawTransport } from './transport-raw.js';
import { TlsTransport } from './transport-tls.js';
import { watch, type Guarded } from './pipeline-guard.js';

/** What a connection needs from its pool. */
export interface ConnectionOwner {
  readonly host: string;
  readonly port: number;
  readonly tls: tls.ConnectionOptions | null;
  /** Called once the exchange is over: the pool decides whether to keep the connection. */
  release(conn: Connection, reusable: boolean): void;
  /** Called once the socket has connected (counts open connections). */
  opened(): void;
  /** Called when the socket is gone for good. */
  closed(conn: Connection, wasOpen: boolean): void;
  /** Table time (ms), for deadlines. */
  now(): number;
  readonly connectTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /** How long a pipelined request may wait behind the response ahead of it. */
  readonly pipelineHolMs: number;
  /**
   * Pipelining went wrong on this connection (a response ahead took too long, or the backend
   * dropped the connection with requests queued): stop pipelining to this backend for a while.
   */
  pipelineTrouble(): void;
}

const LAST_CHUNK = '0\r\n\r\n';

/**
 * Stands in for a pipelined exchange nobody waits for any more (its client left, or the guard sent
 * it again elsewhere). Its request is already on the wire; when its turn comes the connection is
 * closed instead of reading its answer, so the backend sees the abort and can stop work on it.
 */
const DISCARD: ExchangeHandler = {
  cancelled: true,
  onConnection() {},
  onPoolFull() {},
  onResponseStart() {},
  onResponseData: () => true,
  onResponseEnd() {},
  onResponseError() {},
  onRequeue() {},
  onRequestDrain() {},
  cork: (fn) => fn(),
};

export class Connection implements ResponseSink, TransportSink, Guarded {
  readonly #owner: ConnectionOwner;
  readonly #transport: Transport;
  readonly #parser = new ResponseParser();
  #exchange: ExchangeHandler | null = null;
  #connected = false;
  #destroyed = false;
  #requestDone = false;
  #responseStarted = false;
  #paused = false;
  #pipelinable = false;
  #chunk: Buffer | null = null;
  /** Where in #chunk the current exchange's bytes start (a pipelined response may follow another). */
  #offset = 0;
  /**
   * Pipelined exchanges written behind #exchange, oldest first, with whether each was a HEAD and
   * its timeout (parallel arrays: at most the pool's pipeline depth long, no object per request).
   */
  readonly #queue: ExchangeHandler[] = [];
  readonly #queueIsHead: boolean[] = [];
  readonly #queueTimeout: number[] = [];
  /** The current exchange's request timeout (its route's, else its pool's). */
  #timeoutMs = 0;
  /** Table time the current exchange became the one being answered (what queued ones wait on). */
  #headSince = 0;
  /** Watched by pipeline-guard.ts (it sets and clears this). */
  watched = false;
  /** The exchange being answered was pipelined (it waited behind another response on this connection). */
  #advanced = false;
  /** Exchanges completed on this connection; > 0 means the next one runs on a reused socket. */
  uses = 0;
  /** Table time after which the current phase has taken too long; 0 = no deadline. */
  deadline = 0;

  constructor(owner: ConnectionOwner) {
    this.#owner = owner;
    this.deadline = owner.now() + owner.connectTimeoutMs;
    // Plain backends on a raw libuv handle, https:// ones on a TLS socket (transport.ts).
    this.#transport = owner.tls ? new TlsTransport(owner.host, owner.port, owner.tls, this) : new RawTransport(owner.host, owner.port, this);
  }

  get connected(): boolean {
    return this.#connected;
  }
  /** Destroyed (idle timeout, backend closed it, bad bytes): its socket may not have closed yet. */
  get destroyed(): boolean {
    return this.#destroyed;
  }
  /** Requests written and not yet answered (0 = idle). */
  get depth(): number {
    return this.#exchange === null ? 0 : 1 + this.#queue.length;
  }
  /**
   * Another bodiless GET/HEAD may be written behind what this connection carries: its first
   * exchange was one too (never behind a request with a body, which could still be uploading).
   */
  get pipelinable(): boolean {
    return this.#pipelinable && this.#exchange !== null && !this.#destroyed;
  }

  /** Hold writes until uncork(): a pipelined batch goes out in one system call. */
  cork(): void {
    this.#transport.cork();
  }
  uncork(): void {
    this.#transport.uncork();
  }

  /**
   * Start an exchange: write the request head (and, for bodiless requests, that is the whole
   * request). Writes before the socket connects are held by the transport and sent on connect.
   */
  dispatch(exchange: ExchangeHandler, head: string, isHead: boolean, hasBody: boolean, timeoutMs = this.#owner.requestTimeoutMs): void {
    if (this.#exchange !== null) {
      // Pipelined behind the exchange being answered (the pool only does this for bodiless
      // GET/HEAD on a pool that opted in): its turn comes when the responses ahead are complete.
      this.#queue.push(exchange);
      this.#queueIsHead.push(isHead);
      this.#queueTimeout.push(timeoutMs);
      this.#parser.expectMore();
      this.#transport.writeText(head);
      if (!this.watched) watch(this);
      return;
    }
    this.#exchange = exchange;
    this.#advanced = false;
    this.#pipelinable = !hasBody && (exchange.pipelineDepth ?? 1) > 1;
    this.#timeoutMs = timeoutMs;
    this.#requestDone = !hasBody;
    this.#responseStarted = false;
    if (this.#paused) {
      // The previous exchange ended while its client was behind (the last bytes arrived after the
      // pause): a socket left paused would never deliver this response.
      this.#paused = false;
      this.#transport.resume();
    }
    this.#parser.reset(this, isHead);
    if (this.#connected) {
      const now = this.#owner.now();
      this.#headSince = now;
      this.deadline = now + this.#timeoutMs;
    }
    // UTF-8: the head is made of strings uWS decoded from UTF-8 (request-head.ts states the rule),
    // so this gives back the client's own octets. 'latin1' would keep each character's low byte
    // only: U+010D would go out as CR.
    this.#transport.writeText(head);
  }

  /** Write a request body piece; false means the socket is buffering (wait for onRequestDrain). */
  writeBody(chunk: Buffer, chunked: boolean): boolean {
    if (this.#destroyed) return true;
    this.#progress();
    // An empty piece has nothing to send, and in chunked framing it would be the last-chunk marker
    // ("0\r\n\r\n"): the backend would take the rest of the body as a new request.
    if (chunk.length === 0) return !this.#transport.needsDrain;
    return chunked ? this.#transport.writeChunk(chunk) : this.#transport.writeBytes(chunk);
  }

  endBody(chunked: boolean): void {
    this.#requestDone = true;
    // The wait for the first response byte starts once the whole request is on its way.
    this.#progress();
    if (chunked && !this.#destroyed) this.#transport.writeText(LAST_CHUNK);
  }

  /**
   * The upload moved (a piece written, the socket drained, the end sent): the request timeout
   * starts again. While uploading it bounds a stall (neither side moving bytes), so a long upload
   * to a backend that reads it as it comes is never cut; from the end of the request it bounds
   * the wait for the response. Connecting keeps its own deadline; a response already arriving
   * keeps the deadline its reads set.
   */
  #progress(): void {
    if (this.#connected && !this.#responseStarted && !this.#paused) this.deadline = this.#owner.now() + this.#timeoutMs;
  }

  pause(): void {
    this.#paused = true;
    this.deadline = 0;
    this.#transport.pause();
  }
  resume(): void {
    this.#paused = false;
    if (this.#exchange !== null && this.#responseStarted) this.deadline = this.#owner.now() + this.#timeoutMs;
    this.#transport.resume();
  }

  /**
   * `ex`'s client is gone. The exchange being answered takes the connection with it (its response
   * is mid-way); one still queued behind it becomes DISCARD (the connection closes at its turn).
   */
  abandon(ex: ExchangeHandler): void {
    if (ex === this.#exchange) {
      this.destroy();
      return;
    }
    const i = this.#queue.indexOf(ex);
    if (i >= 0) this.#queue[i] = DISCARD;
  }

  /**
   * Abandon the exchange (client gone, timeout): the socket cannot be trusted for another one.
   * `backendFault`: the backend ended or broke the connection. It counts against pipelining to
   * this backend (see #failQueued) only once the backend has answered part of the batch: a kept-
   * alive connection it closed just as the batch arrived (its idle timeout racing ours) says
   * nothing about how it handles pipelining.
   */
  destroy(backendFault = false): void {
    const pipelined = this.#advanced;
    this.#exchange = null;
    if (this.#queue.length > 0) this.#failQueued(backendFault && pipelined);
    if (!this.#destroyed) {
      this.#destroyed = true;
      this.#transport.destroy();
    }
  }

  /** Called by the pool's timer when `deadline` has passed. */
  expire(): void {
    if (this.#exchange === null) {
      // Idle past SLUICE_IDLE_TIMEOUT_MS: close it before the backend does, so we never race a
      // backend's own keep-alive timeout with a request on a socket it is about to close.
      this.destroy();
      return;
    }
    const connecting = !this.#connected;
    this.#fail(
      new UpstreamError(
        connecting ? 'connect' : 'timeout',
        connecting ? `connect to ${this.#owner.host}:${this.#owner.port} timed out` : this.#responseStarted ? 'response stalled past the request timeout' : 'no response within the request timeout',
        !this.#responseStarted,
      ),
    );
  }

  // ResponseSink (called by the parser, inside the client's cork).

  onHead(status: number, reason: string, headers: string[], framing: FramingKind, contentLength: number, octets: boolean): void {
    this.#exchange?.onResponseStart(status, reason, headers, framing, contentLength, octets);
  }

  onBody(chunk: Buffer): boolean {
    const ex = this.#exchange;
    if (ex && !ex.onResponseData(chunk)) {
      this.pause();
      return false;
    }
    return true;
  }

  onComplete(keepAlive: boolean): void {
    const ex = this.#exchange;
    this.#exchange = null;
    this.deadline = 0;
    this.uses++;
    // A response that finished before its request did (an early 413, say) leaves request bytes
    // unsent: the connection is not at a message boundary and cannot be reused.
    const reusable = keepAlive && this.#requestDone && !this.#destroyed;
    ex?.onResponseEnd();
    if (this.#queue.length > 0 && !this.#destroyed) {
      if (reusable && this.#queue[0] !== DISCARD) return this.#advance();
      // The backend ends the connection here (Connection: close, a body delimited by the close),
      // or the next answer is one nobody wants (DISCARD): what was pipelined behind goes out
      // again on other connections. No fault of the backend's (a cap on requests per connection
      // ends connections this way).
      this.#failQueued(false);
      this.#owner.release(this, false);
      return;
    }
    this.#owner.release(this, reusable);
  }

  /** The next pipelined exchange's turn: its request is already written, its response is next. */
  #advance(): void {
    this.#exchange = this.#queue.shift()!;
    this.#advanced = true;
    const isHead = this.#queueIsHead.shift()!;
    this.#timeoutMs = this.#queueTimeout.shift()!;
    this.#requestDone = true;
    this.#responseStarted = false;
    if (this.#paused) {
      // Paused for the previous exchange's slow client: that response is complete and handed over.
      this.#paused = false;
      this.#transport.resume();
    }
    this.#parser.reset(this, isHead, this.#queue.length > 0);
    const now = this.#owner.now();
    this.#headSince = now;
    this.deadline = now + this.#timeoutMs;
  }

  // Guarded (pipeline-guard.ts)

  holLeft(): number | null {
    if (this.#exchange === null || this.#destroyed) return null;
    const q = this.#queue;
    for (let i = 0; i < q.length; i++) if (q[i] !== DISCARD) return this.#headSince + this.#owner.pipelineHolMs - this.#owner.now();
    return null;
  }

  /**
   * The response being answered has kept the queued requests waiting past the bound: they go out
   * again on other connections (bodiless GET/HEAD, safe to repeat). Their places here become
   * DISCARD: the response being answered still completes, then the connection closes.
   */
  hedge(): void {
    const q = this.#queue;
    let lost: ExchangeHandler[] | null = null;
    for (let i = 0; i < q.length; i++) {
      const ex = q[i]!;
      if (ex === DISCARD) continue;
      q[i] = DISCARD;
      (lost ??= []).push(ex);
    }
    if (lost === null) return;
    this.#owner.pipelineTrouble();
    for (const ex of lost) ex.onRequeue();
  }

  /**
   * The queued exchanges lose their connection before any byte of their response: each goes out
   * again on another connection on the next turn (not from inside whatever callback is tearing the
   * connection down). `trouble`: the backend dropped the connection without saying so in a
   * response (it may not handle pipelining, or not under this load), so pipelining to it pauses.
   */
  #failQueued(trouble: boolean): void {
    const lost = this.#queue.splice(0);
    this.#queueIsHead.length = 0;
    this.#queueTimeout.length = 0;
    if (trouble && lost.some((ex) => ex !== DISCARD)) this.#owner.pipelineTrouble();
    setImmediate(() => {
      for (const ex of lost) ex.onRequeue();
    });
  }

  // TransportSink (called by the transport from the event loop).

  onConnect(): void {
    this.#connected = true;
    this.#owner.opened();
    // Busy: the request timeout starts now. Idle (its exchange gave up while it connected): the
    // pool's idle deadline, already set on release, stands.
    if (this.#exchange) this.deadline = this.#owner.now() + this.#timeoutMs;
  }

  #parse = (): void => {
    const chunk = this.#chunk!;
    try {
      const next = this.#parser.execute(chunk, this.#offset);
      // A response completed and a pipelined one's bytes follow in this read: onData hands them
      // to the next exchange, under its own client's cork.
      if (next < chunk.length && this.#exchange !== null && !this.#destroyed) this.#offset = next;
      else this.#chunk = null;
      // Mid-body: the backend gets the request timeout again between reads, so one that sends a
      // head and then stalls is cut off instead of holding the client forever.
      // Not while paused for a slow client: that wait is the client's, not the backend's.
      if (this.#exchange !== null && !this.#paused) this.deadline = this.#owner.now() + this.#timeoutMs;
    } catch (err) {
      // A ParseError is the backend's fault; anything else thrown from a callback is ours, but it
      // must still end this one exchange cleanly instead of taking the worker down.
      this.#chunk = null;
      const message = err instanceof ParseError ? err.message : `internal: ${(err as Error).message}`;
      this.#fail(new UpstreamError('protocol', message, !this.#responseStarted));
    }
  };

  onData(chunk: Buffer): void {
    this.#chunk = chunk;
    this.#offset = 0;
    // One pass per exchange whose response is in this read (more than one only when pipelining).
    while (this.#chunk !== null) {
      const ex = this.#exchange;
      if (ex === null) {
        // Bytes while idle: the backend is speaking out of turn. Never reuse this socket.
        this.#chunk = null;
        this.destroy();
        return;
      }
      this.deadline = 0;
      this.#responseStarted = true;
      const offset = this.#offset;
      ex.cork(this.#parse);
      if (this.#chunk !== null && this.#offset === offset && this.#exchange === ex) {
        // The cork never ran the parse (cannot happen with uWS's cork, which runs it at once):
        // bytes left unread would leave the connection out of step, and looping would never end.
        this.#chunk = null;
        this.#fail(new UpstreamError('protocol', 'internal: response bytes were not parsed', !this.#responseStarted));
      }
    }
  }

  onDrain(): void {
    if (this.#exchange === null) return;
    if (!this.#requestDone) this.#progress();
    this.#exchange.onRequestDrain();
  }

  onEnd(): void {
    const ex = this.#exchange;
    if (ex && this.#parser.active) {
      try {
        this.#chunk = null;
        ex.cork(this.#finish);
      } catch {
        /* #finish reports its own failure */
      }
    }
    this.destroy(true);
  }

  #finish = (): void => {
    try {
      this.#parser.finish();
    } catch (err) {
      this.#fail(new UpstreamError('reset', (err as Error).message, !this.#responseStarted));
    }
  };

  onError(detail: string): void {
    const kind = this.#connected ? 'reset' : 'connect';
    this.#fail(new UpstreamError(kind, `${this.#owner.host}:${this.#owner.port}: ${detail}`, !this.#responseStarted));
  }

  onClose(): void {
    if (this.#exchange) {
      this.#fail(new UpstreamError(this.#connected ? 'reset' : 'connect', 'upstream connection closed', !this.#responseStarted));
    }
    this.#destroyed = true;
    this.#owner.closed(this, this.#connected);
  }

  #fail(err: UpstreamError): void {
    const ex = this.#exchange;
    this.destroy(true);
    this.deadline = 0;
    if (ex) ex.onResponseError(err);
  }
}
