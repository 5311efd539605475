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

/** A pool's own trust settings (tls.ca / tls.insecure in the config file). */
export type UpstreamTrust = Pick<Config, 'upstreamCa' | 'upstreamInsecure'>;

/** CA bundles by path, read once per thread (pools are built on change, never per request). */
const bundles = new Map<string, Buffer>();

/**
 * Connection options for an https:// upstream (null for http://): with `trust`, that pool's
 * settings; without, the thread's (configureUpstreamTls).
 */
export function upstreamTls(upstream: Upstream, trust?: UpstreamTrust): tls.ConnectionOptions | null {
  if (upstream.protocol !== 'https:') return null;
  const skip = trust === undefined ? insecure : trust.upstreamInsecure;
  let ca = trusted;
  if (trust !== undefined) {
    ca = null;
    if (!skip && trust.upstreamCa !== '') {
      ca = bundles.get(trust.upstreamCa) ?? null;
      if (ca === null) bundles.set(trust.upstreamCa, (ca = readFileSync(trust.upstreamCa)));
    }
  }
  const options: tls.ConnectionOptions = {
    // SNI must be a host name, never an IP literal (RFC 6066 §3).
    servername: net.isIP(upstream.host) ? undefined : upstream.host,
    rejectUnauthorized: !skip,
  };
  // `ca` replaces Node's bundled roots: a private CA is trusted instead of, not beside, them.
  if (ca !== null) options.ca = ca;
  return options;
}
