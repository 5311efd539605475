// Parsers for the L4 variables: SLUICE_TCP_LISTEN / SLUICE_UDP_LISTEN, comma-separated
// "host:port=>pool" items ("=>pool" left out: the pool "default"). Whether the pool exists and suits
// the listener is checked once pools are known (l4-check.ts).

import { DEFAULT_POOL } from '../model/pool.js';
import { accept, reject, type Parser } from './parsers.js';
import { listenAddress } from './value-parsers.js';

/** Which HTTP listeners expect a PROXY v2 header: none, both, SLUICE_LISTEN's or SLUICE_TLS_LISTEN's. */
export type AcceptProxy = 'off' | 'all' | 'plain' | 'tls';

export const acceptProxy: Parser<AcceptProxy> = (text) => {
  const t = text.toLowerCase();
  if (['1', 'true', 'yes', 'on', 'all'].includes(t)) return accept('all');
  if (['0', 'false', 'no', 'off'].includes(t)) return accept('off');
  if (t === 'plain' || t === 'tls') return accept(t);
  return reject(text, '1 (every HTTP listener), 0, plain (SLUICE_LISTEN only) or tls (SLUICE_TLS_LISTEN only)');
};

/** One env-declared L4 listener: an address and the pool it forwards to. */
export interface L4Binding {
  readonly host: string;
  readonly port: number;
  readonly pool: string;
}

// Same rule as pool names in the config file (file-pools.ts): they end up in labels and URLs.
const POOL_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export const l4Binding: Parser<L4Binding> = (text) => {
  const arrow = text.indexOf('=>');
  const addressText = (arrow < 0 ? text : text.slice(0, arrow)).trim();
  const pool = arrow < 0 ? DEFAULT_POOL : text.slice(arrow + 2).trim();
  const address = listenAddress(addressText);
  if (!address.ok) return reject(text, `host:port[=>pool] (${address.issues[0]!.expected})`);
  if (!POOL_NAME.test(pool)) return reject(text, `host:port=>pool with a pool name of lower-case letters, digits, ".", "_" and "-" (got "${pool}")`);
  return accept({ host: address.value.host, port: address.value.port, pool });
};
