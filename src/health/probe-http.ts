// HTTP health probe: GET the configured path on a fresh connection (no pooling: a check must see
// whether a new connection works) and pass when the status is one SLUICE_HEALTH_EXPECT accepts.
// Only the status line matters; the body is not read and the connection is closed once the head
// arrives, so a slow or endless body cannot stretch a check.

import http from 'node:http';
import https from 'node:https';
import type { StatusRange, Upstream } from '../config/types.js';
import { upstreamTls, type UpstreamTrust } from '../upstream/tls-options.js';
import { errorCode, settleOnce, type Probe, type ProbeResult } from './probe.js';
import { statusAccepted } from './value-parsers.js';

const USER_AGENT = 'sluice-health-check';

export function httpProbe(path: string, expect: readonly StatusRange[], trust?: UpstreamTrust): Probe {
  return (upstream, timeoutMs, signal) =>
    new Promise<ProbeResult>((resolve) => {
      const tls = upstreamTls(upstream, trust);
      const options: https.RequestOptions = {
        host: upstream.host,
        port: upstream.port,
        method: 'GET',
        path,
        agent: false,
        headers: { host: hostHeader(upstream), 'user-agent': USER_AGENT, accept: '*/*', connection: 'close' },
        ...(tls ?? {}),
      };
      const req = (tls ? https : http).request(options);
      const finish = settleOnce(resolve, req, timeoutMs, signal);
      req.on('response', (res) => {
        res.on('error', () => {}); // destroyed below on purpose
        const status = res.statusCode ?? 0;
        finish(statusAccepted(status, expect), `status ${status}`);
        res.destroy();
      });
      let connected = false;
      req.on('socket', (socket) => socket.once('connect', () => (connected = true)));
      req.on('error', (err) => finish(false, `${connected ? 'error' : 'connect'} ${errorCode(err)}`));
      req.end();
    });
}

/** Host header naming the backend itself: host[:port], IPv6 bracketed, default port omitted. */
function hostHeader(upstream: Upstream): string {
  const host = upstream.host.includes(':') ? `[${upstream.host}]` : upstream.host;
  const defaultPort = upstream.protocol === 'https:' ? 443 : 80;
  return upstream.port === defaultPort ? host : `${host}:${upstream.port}`;
}
