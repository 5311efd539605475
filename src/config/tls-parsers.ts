// Parsers for the TLS variables (SLUICE_TLS_*, SLUICE_REDIRECT_HTTPS, SLUICE_HSTS_MAX_AGE,
// SLUICE_UPSTREAM_CA, SLUICE_UPSTREAM_INSECURE). Like config/parsers.ts they never throw and do no
// I/O: whether the files exist and fit together is checked by tls/files.ts, at --check and start.

import { accept, reject, type Parser } from './parsers.js';
import { listenAddress, type ListenAddress } from './value-parsers.js';

/** '' (the default) means "no TLS listener"; anything else is a listen address. */
export const optionalListenAddress: Parser<ListenAddress | null> = (text) => (text === '' ? accept(null) : listenAddress(text));

/** A file or directory path, '' for none. Control characters are refused: never part of a real path. */
export const filePath: Parser<string> = (text) =>
  /[\u0000-\u001f\u007f]/.test(text) ? reject(text, 'a file path without control characters') : accept(text);

/** Any text; '' for none (the passphrase: no syntax to check, and never echoed in full). */
export const secret: Parser<string> = (text) => accept(text);

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);

/** 1/0, true/false, yes/no, on/off, any case. */
export const flag: Parser<boolean> = (text) => {
  const lower = text.toLowerCase();
  if (TRUE.has(lower)) return accept(true);
  if (FALSE.has(lower)) return accept(false);
  return reject(text, '1 or 0 (also true/false, yes/no, on/off)');
};

// OpenSSL cipher-list syntax: names joined by ':' (or ',' / ' '), with the !, -, + and @ operators.
const CIPHER_LIST = /^[A-Za-z0-9_!+@=.:, -]+$/;

/** An OpenSSL cipher list; whether any name matches is checked at start (tls/files.ts). */
export const cipherList: Parser<string> = (text) =>
  CIPHER_LIST.test(text) ? accept(text) : reject(text, 'an OpenSSL cipher list such as ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384');
