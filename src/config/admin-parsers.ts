// Parsers and the cross-variable rule for the admin and access-log variables (the table of
// variables in src/config/variables.ts says which reads what).

import { isIP } from 'node:net';
import { accept, decimal, keywordOr, reject, type Issue, type Parser } from './parsers.js';
import { listenAddress, type ListenAddress } from './value-parsers.js';
import type { Config } from './types.js';

/** SLUICE_ACCESS_LOG: off (0), on (1) or the fraction of requests logged. */
export const accessLogRate: Parser<number> = keywordOr('off', () => 0, keywordOr('on', () => 1, decimal(0, 1)));

/** SLUICE_ADMIN_LISTEN: host:port as SLUICE_LISTEN, or off. */
export const adminListen: Parser<ListenAddress | null> = keywordOr<ListenAddress | null>('off', () => null, listenAddress);

/**
 * Short enough to type, long enough that guessing it over the network is hopeless (16 characters
 * of the token alphabet is over 90 bits when chosen at random).
 */
const MIN_TOKEN_CHARS = 16;
const MAX_TOKEN_CHARS = 1024;
/** RFC 6750 b64token: what fits after "Bearer " without quoting. */
const TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
/** Shown in place of a rejected token: a secret must not end up in a terminal or a CI log. */
const HIDDEN = '(hidden)';

/** SLUICE_ADMIN_TOKEN: '' (none) or a bearer token. The value is never echoed in errors. */
export const adminToken: Parser<string> = (text) => {
  if (text === '') return accept('');
  if (text.length < MIN_TOKEN_CHARS || text.length > MAX_TOKEN_CHARS) {
    return reject(HIDDEN, `a token of ${MIN_TOKEN_CHARS} to ${MAX_TOKEN_CHARS} characters`);
  }
  if (!TOKEN.test(text)) return reject(HIDDEN, 'a token of letters, digits and - . _ ~ + / (optionally ending in =)');
  return accept(text);
};

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1 (also IPv4-mapped) and localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/**
 * An admin listener other hosts can reach must demand a token: it can drain every backend.
 * Returns the issue to report against SLUICE_ADMIN_TOKEN, or null.
 */
export function adminExposureIssue(config: Partial<Pick<Config, 'adminListen' | 'adminToken'>>): Issue | null {
  const listen = config.adminListen;
  // Either variable failed to parse: it is reported on its own.
  if (listen === undefined || config.adminToken === undefined) return null;
  if (listen === null || config.adminToken !== '' || isLoopbackHost(listen.host)) return null;
  return {
    value: '',
    expected: `a token, because SLUICE_ADMIN_LISTEN (${listen.host}:${listen.port}) is not a loopback address`,
  };
}
