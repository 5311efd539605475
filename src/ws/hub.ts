// A worker's WebSockets: the uWS behaviour (upgrade → route → balance → tunnel), the open tunnels,
// the coarse idle sweep that pings and closes them, and the 1001 closes of a drain or of a backend
// that left on reload. The settings are read once at start (uWS fixes its half at app creation).

import uWS from 'uWebSockets.js';
import type { Config } from '../config/types.js';
import type { ProxyContext } from '../http/context.js';
import { handle, refusalText, type Listener } from '../http/forward.js';
import { clientAddress } from '../http/client-address.js';
import { BodyKind, Refusal } from '../http/request-head.js';
import { NO_HASH } from '../balancer/hash.js';
import { REASONS } from '../upstream/errors.js';
import { offeredProtocols, upstreamHead } from './handshake.js';
import { Closer, Tunnel, type TunnelData } from './tunnel.js';

export interface WsSettings {
  readonly maxBufferBytes: number;
  readonly maxMessageBytes: number;
  /** 0 = no idle timeout. */
  readonly idleTimeoutMs: number;
  readonly compression: Config['wsCompression'];
}

export function wsSettings(config: Config): WsSettings {
  return {
    maxBufferBytes: config.wsMaxBufferBytes,
    maxMessageBytes: config.wsMaxMessageBytes,
    idleTimeoutMs: config.wsIdleTimeoutMs,
    compression: config.wsCompression,
  };
}

/**
 * Room uWS keeps above SLUICE_WS_MAX_BUFFER_BYTES before it would drop a message: pausing the
 * backend stops new reads, but the read in progress may still hold messages to deliver.
 */
const BACKPRESSURE_SLACK = 1024 * 1024;

/**
 * uWS's own message limit sits this far above SLUICE_WS_MAX_MESSAGE_BYTES: uWS drops a client over
 * its limit without a close frame, so Sluice enforces the real limit itself and answers 1009; only
 * a frame beyond this slack is cut by uWS first (the backend still gets 1009).
 */
export const MESSAGE_SLACK = 64 * 1024;

const COMPRESSION: Record<Config['wsCompression'], uWS.CompressOptions> = {
  off: uWS.DISABLED,
  shared: uWS.SHARED_COMPRESSOR | uWS.SHARED_DECOMPRESSOR,
  dedicated: uWS.DEDICATED_COMPRESSOR_32KB | uWS.DEDICATED_DECOMPRESSOR_32KB,
};

export class WsHub {
  readonly settings: WsSettings;
  /** Whether messages to clients are offered to permessage-deflate (uWS compresses only if negotiated). */
  readonly compress: boolean;
  /** Idle sweep counter: a tunnel stamps the tick of each side's last frame. */
  tick = 0;
  /** Drain reached its timeout: every WebSocket got (or gets, if it opens now) a 1001. */
  goneAway = false;
  /** Called when the last open WebSocket leaves (drain waits for it). */
  onEmpty: (() => void) | null = null;
  readonly #ctx: ProxyContext;
  readonly #tunnels = new Set<Tunnel>();
  readonly #timer: NodeJS.Timeout | null;

  constructor(ctx: ProxyContext, settings: WsSettings) {
    this.#ctx = ctx;
    this.settings = settings;
    this.compress = settings.compression !== 'off';
    // A quarter of the idle timeout per tick: pings go out after 3 quiet ticks, closes after 5, so
    // within [1/2, 3/4] and [1, 5/4] of the timeout; one timer per worker, not one per socket.
    this.#timer = settings.idleTimeoutMs > 0 ? setInterval(() => this.#sweep(), Math.max(1, Math.floor(settings.idleTimeoutMs / 4))) : null;
    this.#timer?.unref();
  }

  get size(): number {
    return this.#tunnels.size;
  }

  /** The `.ws('/*', ...)` behaviour for one listener (plain or TLS). */
  behavior(listener: Listener): uWS.WebSocketBehavior<TunnelData> {
    const s = this.settings;
    return {
      compression: COMPRESSION[s.compression],
      maxPayloadLength: s.maxMessageBytes + MESSAGE_SLACK,
      maxBackpressure: s.maxBufferBytes + s.maxMessageBytes + BACKPRESSURE_SLACK,
      // Sluice's own sweep does idle timeouts and pings with millisecond settings (uWS counts seconds).
      idleTimeout: 0,
      sendPingsAutomatically: false,
      upgrade: (res, req, context) => this.#upgrade(res, req, context, listener),
      open: (ws) => tunnelOf(ws).onClientOpen(ws),
      message: (ws, message, isBinary) => tunnelOf(ws).onClientMessage(message, isBinary),
      drain: (ws) => tunnelOf(ws).onClientDrain(),
      close: (ws, code, message) => tunnelOf(ws).onClientClose(code, message),
      ping: (ws, message) => tunnelOf(ws).onClientPing(message),
      pong: (ws, message) => tunnelOf(ws).onClientPong(message),
    };
  }

  add(t: Tunnel): void {
    this.#tunnels.add(t);
  }

  remove(t: Tunnel): void {
    if (this.#tunnels.delete(t) && this.#tunnels.size === 0 && this.onEmpty !== null) this.onEmpty();
  }

  /** Drain timeout reached: every open WebSocket is closed with 1001 both ways. */
  goAway(): void {
    this.goneAway = true;
    for (const t of [...this.#tunnels]) t.close(Closer.SLUICE, 1001, 'server going away');
  }

  /**
   * A reload removed backends: their WebSockets get 1001 after `afterMs` (the drain timeout), as
   * a drained process's do, unless they end first.
   */
  retire(liveSlots: ReadonlySet<number>, afterMs: number): void {
    const leaving = [...this.#tunnels].filter((t) => !liveSlots.has(t.slot));
    if (leaving.length === 0) return;
    setTimeout(() => {
      for (const t of leaving) t.close(Closer.SLUICE, 1001, 'backend removed');
    }, afterMs).unref();
  }

  /**
   * The app is closing every client socket (end of a drain, or a crash): stop the sweep and destroy
   * every upstream socket left, so no backend that is slow to answer a close keeps the thread alive.
   */
  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    for (const t of [...this.#tunnels]) t.terminate();
  }

  #sweep(): void {
    const tick = ++this.tick;
    for (const t of this.#tunnels) t.sweep(tick);
  }

  /** uWS's upgrade handler: a bug costs this handshake, never the process (see forward.ts `handle`). */
  #upgrade(res: uWS.HttpResponse, req: uWS.HttpRequest, context: uWS.us_socket_context_t, listener: Listener): void {
    try {
      this.#route(res, req, context, listener);
    } catch (err) {
      this.#ctx.onInternalError(err as Error);
      try {
        res.cork(() => answer(res, 500, 'internal error', 'internal'));
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
   * The same path as any request (forward.ts): route on the request as sent, the route's pool and
   * policy, the head built and checked by the same builder; then a tunnel instead of an exchange.
   * Routes Sluice answers itself (respond, redirect, no route) answer the handshake as plain HTTP.
   */
  #route(res: uWS.HttpResponse, req: uWS.HttpRequest, context: uWS.us_socket_context_t, listener: Listener): void {
    const ctx = this.#ctx;
    // Read before anything else: uWS invalidates req when this handler returns.
    const key = req.getHeader('sec-websocket-key');
    const protocol = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    const method = req.getCaseSensitiveMethod();
    const url = req.getUrl();
    const query = req.getQuery();
    const view = ctx.view.fill(req, method, url, query);
    const route = ctx.routes.match(view);
    const action = route === null ? null : route.action;
    if (route === null || action === null || action.kind === 'respond' || action.kind === 'redirect') {
      view.clear();
      handle(ctx, res, req, listener);
      return;
    }
    const poolName = action.kind === 'pool' ? action.pool : action.split.pick(view, Math.random());
    view.clear();
    if (!route.websocket) return answerLater(res, 403, 'WebSockets are not allowed on this route', 'websocket-disabled');
    const rt = ctx.runtime(poolName);
    const target = ctx.target;
    target.path = route.rewrite === null ? url : route.rewrite.rewrite(url);
    target.host = route.hostRewrite;
    target.headers = route.requestHeaders;
    const clientIp = clientAddress(res);
    const b = ctx.builder;
    if (!b.build(req, method, url, query, clientIp, listener.proto, ctx.trusted(clientIp), target)) {
      return answerLater(res, b.refusal === Refusal.HEAD_TOO_LARGE ? 431 : 400, refusalText(b.refusal), 'refused');
    }
    if (b.bodyKind !== BodyKind.NONE) return answerLater(res, 400, 'a WebSocket handshake has no body', 'refused');
    ctx.countRoute(route.index);
    if (rt === undefined) return answerLater(res, 503, 'route names an unknown pool', 'unavailable');
    if (ctx.draining || this.goneAway) return answerLater(res, 503, 'shutting down', 'unavailable');
    const protocols = offeredProtocols(protocol);
    if (!validProtocols(protocols)) return answerLater(res, 400, 'malformed or repeated Sec-WebSocket-Protocol', 'refused');
    const t = new Tunnel(this, ctx, rt, res, {
      key,
      extensions,
      context,
      head: upstreamHead(b.head),
      protocols,
      hash: rt.needsHash ? rt.hashOf(req, clientIp) : NO_HASH,
      overrides: route.overrides,
      requestId: b.requestId,
      traceId: b.traceId,
      path: b.path,
      client: clientIp,
    });
    t.start();
  }
}

/**
 * A client WebSocket's tunnel. In this uWS build the user data given to upgrade() is copied onto
 * the WebSocket object itself (getUserData() returns that same object), so the field is read
 * directly: a property load instead of a native call on every message.
 */
function tunnelOf(ws: uWS.WebSocket<TunnelData>): Tunnel {
  return (ws as unknown as TunnelData).tunnel;
}

/** RFC 6455 §4.1: subprotocols are distinct tokens (the upstream client would throw otherwise). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
function validProtocols(list: string[]): boolean {
  for (let i = 0; i < list.length; i++) if (!TOKEN.test(list[i]!) || list.indexOf(list[i]!) !== i) return false;
  return true;
}

function answer(res: uWS.HttpResponse, status: number, text: string, kind: string): void {
  res.writeStatus(status === 403 ? '403 Forbidden' : REASONS[status] ?? String(status));
  res.writeHeader('content-type', 'text/plain');
  res.writeHeader('x-sluice-error', kind);
  res.end(text + '\n', true);
}

/** Answer on the next turn and close, as forward.ts `refuse` does (nothing pipelined behind it is routed). */
function answerLater(res: uWS.HttpResponse, status: number, text: string, kind: string): void {
  let gone = false;
  res.onAborted(() => {
    gone = true;
  });
  setImmediate(() => {
    if (!gone) res.cork(() => answer(res, status, text, kind));
  });
}
