// TLS settings for https:// upstreams: verification on, SNI from the URL's host name, trust from
// the system roots or SLUICE_UPSTREAM_CA; SLUICE_UPSTREAM_INSECURE=1 turns verification off.

import { readFileSync } from 'node:fs';
import net from 'node:net';
import type tls from 'node:tls';
import type { Config, Upstream } from '../config/types.js';

/** This worker's trust settings, set once by configureUpstreamTls before any pool exists. */
let trusted: Buffer | null = null;
let insecure = false;

/**
 * Read SLUICE_UPSTREAM_CA once per worker (start-up only, so the sync read never meets a request).
 * The control plane has already checked the file (src/tls/files.ts).
 */
export function configureUpstreamTls(config: Pick<Config, 'upstreamCa' | 'upstreamInsecure'>): void {
  insecure = config.upstreamInsecure;
  trusted = config.upstreamCa === '' || insecure ? null : readFileSync(config.upstreamCa);
}

export function upstreamTls(upstream: Upstream): tls.ConnectionOptions | null {
  if (upstream.protocol !== 'https:') return null;
  const options: tls.ConnectionOptions = {
    // SNI must be a host name, never an IP literal (RFC 6066 §3).
    servername: net.isIP(upstream.host) ? undefined : upstream.host,
    rejectUnauthorized: !insecure,
  };
  // `ca` replaces Node's bundled roots: a private CA is trusted instead of, not beside, them.
  if (trusted !== null) options.ca = trusted;
  return options;
}
