// TLS settings for https:// upstreams: verification on, SNI from the URL's host name.

import net from 'node:net';
import type tls from 'node:tls';
import type { Upstream } from '../config/types.js';

export function upstreamTls(upstream: Upstream): tls.ConnectionOptions | null {
  if (upstream.protocol !== 'https:') return null;
  return {
    // SNI must be a host name, never an IP literal (RFC 6066 §3).
    servername: net.isIP(upstream.host) ? undefined : upstream.host,
    rejectUnauthorized: true,
  };
}
