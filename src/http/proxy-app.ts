// The uWS side of a worker: one App (plain, or TLS later) whose every route forwards, a listen
// socket on the shared port (uWS sets SO_REUSEPORT, so every worker binds the same one and the
// kernel spreads accepts), and the drain sequence that lets the thread end without the abort uWS
// causes when a thread exits with sockets open.

import uWS from 'uWebSockets.js';
import type { ProxyContext } from './context.js';
import { forward } from './forward.js';

export class ProxyApp {
  readonly #app: uWS.TemplatedApp;
  readonly #ctx: ProxyContext;
  #listenSocket: uWS.us_listen_socket | null = null;
  #closed = false;

  constructor(ctx: ProxyContext) {
    this.#ctx = ctx;
    this.#app = uWS.App();
    this.#app.any('/*', (res, req) => forward(ctx, res, req));
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#app.listen(host, port, (socket) => {
        if (!socket) return reject(new Error(`cannot listen on ${host}:${port} (address in use or not available)`));
        this.#listenSocket = socket;
        resolve();
      });
    });
  }

  /**
   * Stop accepting, let in-flight requests finish (their connections close after the response),
   * then close every socket. Resolves when the thread may exit.
   */
  drain(timeoutMs: number): Promise<void> {
    const ctx = this.#ctx;
    ctx.draining = true;
    ctx.closeAfter = true;
    if (this.#listenSocket) {
      uWS.us_listen_socket_close(this.#listenSocket);
      this.#listenSocket = null;
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        ctx.onIdle = null;
        this.close();
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      ctx.onIdle = done;
      if (ctx.inFlight === 0) done();
    });
  }

  /** Close all client sockets (aborting anything still in flight) and upstream pools. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ctx.close();
    // TemplatedApp.close() exists in this build though its typings omit it: it closes the listen
    // socket and every open connection, which is what makes a clean thread exit possible.
    (this.#app as unknown as { close(): void }).close();
  }
}
