// The uWS side of a worker: a plain App and, with SLUICE_TLS_LISTEN, an SSLApp beside it (src/tls),
// whose every route forwards (WebSocket upgrades go to the worker's WsHub, src/ws), a listen socket on each shared port (uWS sets SO_REUSEPORT, so every worker binds the same one and the
// kernel spreads accepts), and the drain sequence that lets the thread end without the abort uWS
// causes when a thread exits with sockets open.

import uWS from 'uWebSockets.js';
import type { ProxyContext } from './context.js';
import { handle, type Listener } from './forward.js';
import type { TlsListener } from '../tls/ssl-app.js';
import { redirectToHttps } from '../tls/redirect.js';
import { WsHub, type WsSettings } from '../ws/hub.js';

/**
 * After the last in-flight request of a drain, how long uWS gets to send what it still holds
 * before every socket is closed. Writes to a reading client finish well within it; a client too
 * slow for it would hold the worker to the drain timeout anyway.
 */
const DRAIN_FLUSH_MS = 100;

/** WebSocket settings when the caller gives none: the variables' defaults (docs/configuration.md). */
const DEFAULT_WS: WsSettings = { maxBufferBytes: 4_194_304, maxMessageBytes: 1_048_576, idleTimeoutMs: 60_000, compression: 'off' };

/** The plain listener's requests: X-Forwarded-Proto http, no HSTS. */
const PLAIN: Listener = { proto: 'http', hsts: null };

export class ProxyApp {
  readonly #app: uWS.TemplatedApp;
  readonly #ctx: ProxyContext;
  #listenSocket: uWS.us_listen_socket | null = null;
  readonly #tls: TlsListener | null;
  #tlsApp: uWS.TemplatedApp | null = null;
  #tlsSocket: uWS.us_listen_socket | null = null;
  #closed = false;
  /** This worker's WebSockets (upgrades on either listener). */
  readonly ws: WsHub;

  constructor(ctx: ProxyContext, tls: TlsListener | null = null, ws: WsSettings = DEFAULT_WS) {
    this.#ctx = ctx;
    this.#tls = tls;
    this.ws = new WsHub(ctx, ws);
    this.#app = uWS.App();
    if (tls !== null && tls.redirectHttps) this.#app.any('/*', redirectToHttps(tls.port));
    else this.#app.any('/*', (res, req) => handle(ctx, res, req, PLAIN)).ws('/*', this.ws.behavior(PLAIN));
  }

  /**
   * Listen on the plain port (`plain`: none when SLUICE_LISTEN=off) and, with TLS, the TLS port
   * (rejects naming a bad TLS file).
   */
  async listen(plain: { host: string; port: number } | null): Promise<void> {
    const tls = this.#tls;
    if (tls !== null) {
      const ctx = this.#ctx;
      const listener = tls.listener;
      this.#tlsApp = tls.createApp((res, req) => handle(ctx, res, req, listener), this.ws.behavior(listener));
      this.#tlsSocket = await listenOn(this.#tlsApp, tls.host, tls.port);
    }
    if (plain !== null) this.#listenSocket = await listenOn(this.#app, plain.host, plain.port);
  }

  /**
   * Stop accepting, let in-flight requests finish (their connections close after the response),
   * leave open WebSockets alone until the timeout and then close them with 1001, then close every
   * socket. Resolves when the thread may exit.
   */
  drain(timeoutMs: number): Promise<void> {
    const ctx = this.#ctx;
    const ws = this.ws;
    ctx.draining = true;
    ctx.closeAfter = true;
    if (this.#listenSocket) {
      uWS.us_listen_socket_close(this.#listenSocket);
      this.#listenSocket = null;
    }
    if (this.#tlsSocket) {
      uWS.us_listen_socket_close(this.#tlsSocket);
      this.#tlsSocket = null;
    }
    return new Promise((resolve) => {
      let flushTimer: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(timer);
        clearTimeout(flushTimer);
        ctx.onIdle = null;
        ws.onEmpty = null;
        this.close();
        resolve();
      };
      // onIdle runs inside the last response's cork: closing every socket there would throw away
      // the bytes uWS has not sent yet (the client would get nothing). Let uWS write them and let
      // close-marked connections close themselves, then close the idle keep-alive ones. The same
      // goes for the close frames of the last WebSockets.
      const flush = (): void => {
        if (flushTimer === undefined) flushTimer = setTimeout(done, DRAIN_FLUSH_MS);
      };
      const timer = setTimeout(() => {
        // Time is up: WebSockets get a 1001 close frame (not a reset), then a moment to send it.
        ws.goAway();
        flush();
      }, timeoutMs);
      ctx.onIdle = () => {
        if (ws.size === 0) flush();
      };
      ws.onEmpty = () => {
        if (ctx.inFlight === 0) flush();
      };
      if (ctx.inFlight === 0 && ws.size === 0) done();
    });
  }

  /**
   * Crash: close every client socket (uWS reports each request in flight as aborted) and then
   * destroy every upstream socket, busy or not. Afterwards uWS holds no socket, so the thread
   * either ends by itself or can be terminated without aborting the process.
   */
  abort(): void {
    try {
      this.close();
    } finally {
      this.#ctx.abort();
    }
  }

  /** Close all client sockets (aborting anything still in flight) and upstream pools. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ctx.close();
    this.ws.close();
    // TemplatedApp.close() exists in this build though its typings omit it: it closes the listen
    // socket and every open connection, which is what makes a clean thread exit possible.
    (this.#app as unknown as { close(): void }).close();
    (this.#tlsApp as unknown as { close(): void } | null)?.close();
  }
}

function listenOn(app: uWS.TemplatedApp, host: string, port: number): Promise<uWS.us_listen_socket> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (socket) => {
      if (!socket) return reject(new Error(`cannot listen on ${host}:${port} (address in use or not available)`));
      resolve(socket);
    });
  });
}
