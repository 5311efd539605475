// One proxied WebSocket: the upstream handshake (upstream-leg.ts, Sluice's own socket), the client's
// upgrade once the backend said 101 (or the backend's refusal relayed as a normal response), then
// messages, pings and closes both ways, backpressure both ways and the accounting in the shared table.
//
// Close codes (docs/websocket.md): a close frame from either side is relayed with its code and
// reason; a client that vanishes gives the backend 1001; a backend that vanishes gives the client
// 1011; a backend that breaks the protocol gives the client 1014 (bad gateway); a message over
// SLUICE_WS_MAX_MESSAGE_BYTES closes both sides with 1009; a backend too slow to take the client's
// messages (over SLUICE_WS_MAX_BUFFER_BYTES queued) closes both with 1013; idle and drain, 1001.

import { performance } from 'node:perf_hooks';
import type uWS from 'uWebSockets.js';
import type { Backend } from '../model/upstream.js';
import type { PoolRuntime } from '../http/pool-runtime.js';
import type { ProxyContext } from '../http/context.js';
import { RESPONSE_DROP } from '../http/request-head.js';
import { UpstreamError, REASONS } from '../upstream/errors.js';
import { upstreamTls } from '../upstream/tls-options.js';
import { C, wsCloseCell } from '../state/layout.js';
import { sendableCode } from './handshake.js';
import type { WsHub } from './hub.js';
import { UpstreamLeg, type LegSink } from './upstream-leg.js';

/** A client's handshake as the hub read and routed it (uWS's request is gone by the time it is used). */
export interface HandshakeInfo {
  readonly key: string;
  readonly extensions: string;
  readonly context: uWS.us_socket_context_t;
  /** The upstream request line and headers (handshake.ts upstreamHead). */
  readonly head: string;
  readonly protocols: string[];
  /** The pool's affinity key for this request (NO_HASH when it has none). */
  readonly hash: number;
  readonly overrides: { readonly retries?: number; readonly requestTimeoutMs?: number };
  // For the access log: strings the request head builder made anyway.
  readonly requestId: string;
  readonly traceId: string;
  readonly path: string;
  readonly client: string;
}

/** What uWS keeps for each client WebSocket (getUserData). */
export interface TunnelData {
  readonly tunnel: Tunnel;
}

/** Who ended a WebSocket, as an index into WS_CLOSERS (layout.ts). */
export const Closer = { CLIENT: 0, BACKEND: 1, SLUICE: 2 } as const;

/** The reason uWS gives its close handler when it drops a client for a message over its limit. */
const TOO_BIG = Buffer.from('Received too big message');

/** Payload of Sluice's own keepalive pings: their pongs are not relayed. */
const KEEPALIVE = Buffer.from('sluice-keepalive');

/** Sweep ticks (a quarter of the idle timeout each) of silence before a ping, and before the close. */
const PING_TICKS = 3;
const IDLE_TICKS = 5;

const HIGH_OCTET = /[\x80-\xff]/;
const EMPTY = new Uint8Array(0);

const enum State {
  HANDSHAKE,
  OPEN,
  DONE,
}

export class Tunnel implements LegSink {
  readonly #hub: WsHub;
  readonly #ctx: ProxyContext;
  #rt: PoolRuntime;
  /** The client's handshake and where it goes (dropped once open: an idle WebSocket should hold little). */
  #hs: HandshakeInfo | null;
  readonly #retryLimit: number;
  readonly #timeoutMs: number;
  readonly #started = performance.now();
  #dispatched = 0;
  #retries = 0;
  slot = -1;
  #state = State.HANDSHAKE;
  /** The client's HTTP response while the handshake runs; null once upgraded, answered or aborted. */
  #res: uWS.HttpResponse | null;
  #client: uWS.WebSocket<TunnelData> | null = null;
  #upstream: UpstreamLeg | null = null;
  #handshakeAccounted = false;
  /** Counted in OPEN_CONNS / WS_OPEN until the upstream socket closes. */
  #counted = false;
  /** A close was decided (relayed or sent by Sluice): the other side's close event is not relayed again. */
  #closing = false;
  #closeCounted = false;
  /** Reading from the backend is paused because the client has too much queued. */
  #paused = false;
  /** Sweep tick of the last frame from each side, and whether a keepalive ping is out. */
  lastClient = 0;
  lastBackend = 0;
  #pingedClient = false;
  #pingedBackend = false;
  /** Messages and bytes to the client during the backend read being relayed (counted once per read). */
  #downMessages = 0;
  #downBytes = 0;

  constructor(hub: WsHub, ctx: ProxyContext, rt: PoolRuntime, res: uWS.HttpResponse, hs: HandshakeInfo) {
    this.#hub = hub;
    this.#ctx = ctx;
    this.#rt = rt;
    this.#res = res;
    this.#hs = hs;
    this.#retryLimit = hs.overrides.retries ?? rt.settings.retries;
    this.#timeoutMs = rt.settings.connectTimeoutMs + (hs.overrides.requestTimeoutMs ?? rt.settings.requestTimeoutMs);
    this.lastClient = this.lastBackend = hub.tick;
    res.onAborted(() => this.#onAborted());
  }

  /** Pick a backend and start the upstream handshake (or answer the client when there is none). */
  start(): void {
    const slot = this.#rt.pick(-1, this.#hs!.hash);
    if (slot < 0) {
      const err =
        slot === -2
          ? new UpstreamError('overloaded', 'every backend is at SLUICE_MAX_REQUESTS_PER_BACKEND', true)
          : new UpstreamError('unavailable', 'no backend available', true);
      return this.#fail(err);
    }
    this.slot = slot;
    this.#ctx.onStart(this.#rt, slot);
    this.#connect();
  }

  #connect(): void {
    const backend = this.#backend(this.slot);
    if (backend === undefined) return this.#fail(new UpstreamError('unavailable', 'backend left the pool', true));
    const u = backend.upstream;
    const hs = this.#hs!;
    this.#dispatched = performance.now();
    this.#upstream = new UpstreamLeg(this, {
      host: u.host,
      port: u.port,
      tls: upstreamTls(u, this.#rt.settings),
      head: hs.head,
      protocols: hs.protocols,
      timeoutMs: this.#timeoutMs,
      maxMessageBytes: this.#hub.settings.maxMessageBytes,
    });
  }

  #backend(slot: number): Backend | undefined {
    const members = this.#rt.members;
    for (let i = 0; i < members.length; i++) if (members[i]!.slot === slot) return members[i];
    return undefined;
  }

  // Handshake

  /** LegSink: the backend said 101. */
  onUpgrade(protocol: string, headers: string[]): void {
    const res = this.#res;
    const leg = this.#upstream!;
    this.#rt.onResponseStart(this.slot, performance.now() - this.#dispatched, 101);
    if (res === null) {
      // The client left while the backend was answering.
      this.#closing = true;
      this.#state = State.DONE;
      leg.close(1001, 'client went away');
      return;
    }
    this.#res = null;
    this.#state = State.OPEN;
    const hs = this.#hs!;
    // The 101's headers worth relaying (Set-Cookie and such).
    const h = relayedHeaders(headers, true);
    res.cork(() => {
      if (h.length > 0) {
        // uWS writes its own 101 head around these when the status is written first.
        res.writeStatus('101 Switching Protocols');
        for (let i = 0; i < h.length; i += 2) res.writeHeader(h[i]!, headerValue(h[i + 1]!));
      }
      res.upgrade<TunnelData>({ tunnel: this }, hs.key, protocol, hs.extensions, hs.context);
    });
    // After the upgrade (uWS has called onClientOpen, so the hub holds this WebSocket): a drain
    // waiting for its last request must see the WebSocket that request became.
    this.#accountHandshake(101);
    this.#hs = null;
  }

  /** LegSink: the backend answered the handshake with something other than 101: relay it as a response. */
  onRefusal(status: number, reason: string, headers: string[], body: Buffer): void {
    this.#rt.onResponseStart(this.slot, performance.now() - this.#dispatched, status);
    this.#state = State.DONE;
    const res = this.#res;
    this.#res = null;
    this.#accountHandshake(status);
    if (res === null) return;
    res.cork(() => {
      res.writeStatus(headerValue(reason !== '' ? status + ' ' + reason : String(status)));
      const h = relayedHeaders(headers, false);
      for (let i = 0; i < h.length; i += 2) res.writeHeader(h[i]!, headerValue(h[i + 1]!));
      if (this.#ctx.closeAfter) res.writeHeader('connection', 'close');
      res.end(body);
    });
  }

  /** LegSink: no usable answer to the upstream handshake. */
  onHandshakeError(e: UpstreamError): void {
    if (this.#state !== State.HANDSHAKE) return;
    this.#rt.onUpstreamError(this.slot, e);
    if (e.kind === 'connect' && this.#res !== null && this.#retries < this.#retryLimit && this.#rt.takeRetry()) {
      // Nothing reached the backend: try another one of the pool, as idempotent requests are.
      const rt = this.#ctx.runtime(this.#rt.name) ?? this.#rt;
      const next = rt.pick(this.slot, this.#hs!.hash);
      if (next >= 0 && next !== this.slot) {
        this.#retries++;
        this.#rt = rt;
        this.#ctx.moveSlot(this.slot, next);
        this.slot = next;
        this.#connect();
        return;
      }
    }
    this.#fail(e);
  }

  /** Answer the client with the error's status (no upgrade) and account the handshake. */
  #fail(err: UpstreamError): void {
    this.#state = State.DONE;
    const res = this.#res;
    this.#res = null;
    if (this.slot >= 0) this.#accountHandshake(err.status);
    if (res === null) return;
    res.cork(() => {
      res.writeStatus(REASONS[err.status] ?? String(err.status));
      res.writeHeader('content-type', 'text/plain');
      res.writeHeader('x-sluice-error', err.kind);
      if (err.status === 503) res.writeHeader('retry-after', '1');
      res.end(err.message + '\n', true);
    });
  }

  #onAborted(): void {
    this.#res = null;
    if (this.#state !== State.HANDSHAKE) return;
    this.#state = State.DONE;
    this.#accountHandshake(499);
    this.#upstream?.terminate();
  }

  /** Exactly once: the handshake's request leaves in-flight, counts its status and is logged. */
  #accountHandshake(status: number): void {
    if (this.#handshakeAccounted || this.slot < 0) return;
    this.#handshakeAccounted = true;
    const now = performance.now();
    const totalMs = now - this.#started;
    const upstreamMs = this.#dispatched === 0 ? -1 : now - this.#dispatched;
    this.#ctx.onDone(this.slot, status, totalMs, upstreamMs);
    const log = this.#ctx.accessLog;
    const hs = this.#hs;
    if (log !== null && hs !== null && log.sampled()) {
      const backend = this.#backend(this.slot);
      log.write({
        requestId: hs.requestId,
        traceId: hs.traceId,
        client: hs.client,
        method: 'GET',
        path: hs.path,
        status,
        bytesIn: 0,
        bytesOut: 0,
        backend: backend === undefined ? '' : backend.upstream.host + ':' + backend.upstream.port,
        upstreamMs: upstreamMs < 0 ? -1 : Math.round(upstreamMs * 1000) / 1000,
        totalMs: Math.round(totalMs * 1000) / 1000,
        retries: this.#retries,
      });
    }
  }

  // Open: the client side (uWS callbacks)

  onClientOpen(client: uWS.WebSocket<TunnelData>): void {
    this.#client = client;
    const table = this.#ctx.table;
    table.add(C.OPEN_CONNS, this.slot, 1);
    table.add(C.WS_OPEN, this.slot, 1);
    this.#counted = true;
    this.lastClient = this.lastBackend = this.#hub.tick;
    this.#hub.add(this);
    if (this.#hub.goneAway) this.close(Closer.SLUICE, 1001, 'server going away');
  }

  onClientMessage(message: ArrayBuffer, isBinary: boolean): void {
    const leg = this.#upstream!;
    if (this.#closing || !leg.open) return;
    this.lastClient = this.#hub.tick;
    this.#pingedClient = false;
    const n = message.byteLength;
    if (n > this.#hub.settings.maxMessageBytes) return this.close(Closer.SLUICE, 1009, 'message too big');
    // Masked into this turn's batch now (uWS neuters the buffer when this returns); counted when
    // the batch goes out (onSent).
    leg.send(new Uint8Array(message), isBinary);
    // This uWS build cannot pause a WebSocket's reads, so a backend slower than its client can
    // only be bounded by ending the conversation.
    if (leg.bufferedAmount > this.#hub.settings.maxBufferBytes) this.close(Closer.SLUICE, 1013, 'backend too slow');
  }

  onClientPing(message: ArrayBuffer): void {
    this.lastClient = this.#hub.tick;
    this.#pingedClient = false;
    // uWS has already answered it; the backend sees it too.
    if (!this.#closing) this.#upstream!.ping(new Uint8Array(message));
  }

  onClientPong(message: ArrayBuffer): void {
    this.lastClient = this.#hub.tick;
    const ours = this.#pingedClient && KEEPALIVE.equals(new Uint8Array(message));
    this.#pingedClient = false;
    if (!ours && !this.#closing) this.#upstream!.pong(new Uint8Array(message));
  }

  onClientDrain(): void {
    const client = this.#client;
    if (this.#paused && client !== null && client.getBufferedAmount() <= this.#hub.settings.maxBufferBytes / 2) {
      this.#paused = false;
      this.#upstream!.resume();
    }
  }

  /** uWS closed the client (any reason, our own end() included); the client must not be used again. */
  onClientClose(code: number, message: ArrayBuffer): void {
    this.#client = null;
    const leg = this.#upstream!;
    if (this.#closing) return this.#maybeDone();
    this.#closing = true;
    if (!leg.open) return this.#maybeDone();
    if (code === 1006 && TOO_BIG.equals(new Uint8Array(message))) {
      // uWS cut a frame far over SLUICE_WS_MAX_MESSAGE_BYTES (see MESSAGE_SLACK in hub.ts).
      this.#countClose(Closer.SLUICE, 1009);
      leg.close(1009, 'message too big');
    } else {
      this.#countClose(Closer.CLIENT, code);
      if (code === 1005) leg.close(1005, EMPTY);
      else if (sendableCode(code)) leg.close(code, new Uint8Array(message));
      else leg.close(1001, 'client went away');
    }
    this.#maybeDone();
  }

  /** LegSink: a batch of the client's messages went to the backend. */
  onSent(messages: number, bytes: number): void {
    const table = this.#ctx.table;
    table.add(C.WS_MSGS_UP, this.slot, messages);
    table.addWsBytes(C.WS_BYTES_UP_LO, this.slot, bytes);
  }

  // Open: the backend side (LegSink, called by the leg's frame parser inside the client's cork)

  /** One backend read: its messages are sent to the client corked, and counted once. */
  corked(fn: () => void): void {
    const client = this.#client;
    if (client !== null) client.cork(fn);
    else fn();
    if (this.#downMessages === 0) return;
    const table = this.#ctx.table;
    table.add(C.WS_MSGS_DOWN, this.slot, this.#downMessages);
    table.addWsBytes(C.WS_BYTES_DOWN_LO, this.slot, this.#downBytes);
    this.#downMessages = this.#downBytes = 0;
  }

  onMessage(data: Uint8Array, isBinary: boolean): void {
    const client = this.#client;
    if (client === null || this.#closing) return;
    this.lastBackend = this.#hub.tick;
    this.#pingedBackend = false;
    const status = client.send(data, isBinary, this.#hub.compress);
    this.#downMessages++;
    this.#downBytes += data.length;
    if (status === 1) return;
    if (status === 2) {
      // Dropped: uWS's limit is set above what pausing allows, so this means a bug, not a slow client.
      this.close(Closer.SLUICE, 1011, 'message dropped');
      return;
    }
    if (!this.#paused && client.getBufferedAmount() > this.#hub.settings.maxBufferBytes) {
      this.#paused = true;
      this.#upstream!.pause();
    }
  }

  onPing(data: Buffer): void {
    this.lastBackend = this.#hub.tick;
    this.#pingedBackend = false;
    if (this.#client !== null && !this.#closing) this.#client.ping(data);
  }

  onPong(): void {
    // Answers to Sluice's keepalive pings or to relayed client pings (uWS answered those already).
    this.lastBackend = this.#hub.tick;
    this.#pingedBackend = false;
  }

  /** The backend's close frame (the leg has answered it): relayed with its code and reason. */
  onClose(code: number, reason: Buffer): void {
    const client = this.#client;
    if (this.#closing || client === null) return;
    this.#closing = true;
    this.#countClose(Closer.BACKEND, code);
    if (sendableCode(code)) client.end(code, reason);
    else client.end();
  }

  /** The backend broke the protocol (the leg has told it so): 1009 for a message too big, else 1014. */
  onFrameError(code: number): void {
    const client = this.#client;
    if (this.#closing || client === null) return;
    this.#closing = true;
    if (code === 1009) {
      this.#countClose(Closer.SLUICE, 1009);
      client.end(1009, 'message too big');
    } else {
      this.#countClose(Closer.SLUICE, 1014);
      client.end(1014, 'invalid frames from the backend');
    }
  }

  /** The upstream socket is gone (or about to be): it no longer counts on its backend. */
  #release(): void {
    if (!this.#counted) return;
    this.#counted = false;
    const table = this.#ctx.table;
    table.add(C.OPEN_CONNS, this.slot, -1);
    table.add(C.WS_OPEN, this.slot, -1);
  }

  /** LegSink: the upstream socket is gone; without a close frame first, the backend was lost. */
  onGone(): void {
    this.#release();
    const client = this.#client;
    if (!this.#closing && client !== null) {
      this.#closing = true;
      this.#countClose(Closer.BACKEND, 1006);
      this.#rt.onUpstreamError(this.slot, new UpstreamError('reset', 'backend WebSocket lost', false));
      client.end(1011, 'backend connection lost');
    }
    this.#state = State.DONE;
    this.#maybeDone();
  }

  // Both sides

  /** Sluice ends the conversation (limit, idle, drain, removed backend): the same code both ways. */
  close(closer: number, code: number, reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#countClose(closer, code);
    this.#upstream?.close(code, reason);
    const client = this.#client;
    if (client !== null) client.end(code, reason);
  }

  /** Destroy the upstream socket at once (no close handshake): the worker is going down. */
  terminate(): void {
    this.#closing = true;
    // Released now, not on the close event: a crashed thread may be gone before that event.
    this.#release();
    this.#upstream?.terminate();
  }

  /** The idle sweep: ping a side quiet for half the timeout, close both when one is quiet for all of it. */
  sweep(tick: number): void {
    if (this.#closing) return;
    if (tick - this.lastClient >= IDLE_TICKS || tick - this.lastBackend >= IDLE_TICKS) {
      this.close(Closer.SLUICE, 1001, 'idle timeout');
      return;
    }
    if (tick - this.lastClient >= PING_TICKS && !this.#pingedClient && this.#client !== null) {
      this.#pingedClient = true;
      this.#client.ping(KEEPALIVE);
    }
    const leg = this.#upstream;
    if (tick - this.lastBackend >= PING_TICKS && !this.#pingedBackend && leg !== null && leg.open) {
      this.#pingedBackend = true;
      leg.ping(KEEPALIVE);
    }
  }

  #countClose(closer: number, code: number): void {
    if (this.#closeCounted) return;
    this.#closeCounted = true;
    Atomics.add(this.#ctx.table.words, wsCloseCell(closer, code), 1);
  }

  /** Both sides closed: leave the hub. */
  #maybeDone(): void {
    if (this.#client === null && !this.#counted) this.#hub.remove(this);
  }
}

/**
 * The response headers of a handshake answer worth relaying, as name/value pairs (latin1 strings,
 * one character per octet, as Node decodes them): hop-by-hop ones, the framing uWS writes itself
 * and, on a 101, the WebSocket negotiation (uWS answers the client's own key and offer) are dropped.
 */
function relayedHeaders(raw: string[], upgrade: boolean): string[] {
  let named: Set<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() !== 'connection') continue;
    for (const token of raw[i + 1]!.split(',')) {
      const t = token.trim().toLowerCase();
      if (t !== '' && t !== 'close' && t !== 'keep-alive' && t !== 'upgrade') (named ??= new Set()).add(t);
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (RESPONSE_DROP.has(name) || (named !== null && named.has(name))) continue;
    if (upgrade && name.startsWith('sec-websocket-')) continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}

/** A latin1 header string back to the octets it came as (uWS would encode a string as UTF-8). */
function headerValue(v: string): string | Buffer {
  return HIGH_OCTET.test(v) ? Buffer.from(v, 'latin1') : v;
}
