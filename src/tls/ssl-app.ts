// The TLS side of a worker: a uWS SSLApp with the default certificate, one SNI context per server
// name (addServerName), and the request handler (and WebSocket behaviour) attached to each. uWS gives every server name its
// own router, so a name without routes would drop its requests: each gets the same handler.

import uWS from 'uWebSockets.js';
import type { Config } from '../config/types.js';
import type { Listener } from '../http/forward.js';
import { checkTls, type CertPair } from './files.js';

type Handler = (res: uWS.HttpResponse, req: uWS.HttpRequest) => void;

export class TlsListener {
  readonly host: string;
  readonly port: number;
  /** The plain listener answers with a 308 to this one instead of proxying. */
  readonly redirectHttps: boolean;
  /** Passed to forward() for every request on this listener (built once). */
  readonly listener: Listener;
  readonly #config: Config;

  constructor(config: Config, listen: { host: string; port: number }) {
    this.#config = config;
    this.host = listen.host;
    this.port = listen.port;
    this.redirectHttps = config.redirectHttps;
    this.listener = { proto: 'https', hsts: config.hstsMaxAge > 0 ? `max-age=${config.hstsMaxAge}` : null };
  }

  /**
   * Re-check the files (they may have changed since the control plane checked them) and build the
   * app. Throws an Error naming the file when one is unusable: uWS itself only says "App
   * construction failed", and an SNI context it cannot load crashes the process on first use.
   */
  createApp<U>(handler: Handler, ws?: uWS.WebSocketBehavior<U>): uWS.TemplatedApp {
    const c = this.#config;
    const report = checkTls(c);
    if (report.files === null) throw new Error(report.errors.join('; ') || 'TLS files unusable');
    const { fallback, sni } = report.files;
    let app: uWS.TemplatedApp;
    try {
      app = uWS.SSLApp(this.#options(fallback));
    } catch {
      throw new Error(`uWS could not load the TLS certificate ${fallback.certFile} with key ${fallback.keyFile}`);
    }
    // Registered before any server name: routes go to the router last browsed to with domain().
    app.any('/*', handler);
    if (ws !== undefined) app.ws('/*', ws);
    for (const pair of sni) {
      const options = this.#options(pair);
      for (const name of pair.names) {
        const router = app.addServerName(name, options).domain(name).any('/*', handler);
        if (ws !== undefined) router.ws('/*', ws);
      }
    }
    return app;
  }

  #options(pair: CertPair): uWS.AppOptions {
    const c = this.#config;
    const options: uWS.AppOptions = { cert_file_name: pair.certFile, key_file_name: pair.keyFile, ssl_ciphers: c.tlsCiphers };
    if (c.tlsKeyPassphrase !== '') options.passphrase = c.tlsKeyPassphrase;
    return options;
  }
}

/** The worker's TLS listener, or null when SLUICE_TLS_LISTEN is not set. */
export function tlsListener(config: Config): TlsListener | null {
  return config.tlsListen === null ? null : new TlsListener(config, config.tlsListen);
}
