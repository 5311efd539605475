// Parsers for the health-check values of SLUICE_HEALTH_PATH, SLUICE_HEALTH_EXPECT and
// SLUICE_ENV_FILE, built on config/parsers.ts like the rest of the variable table.

import { isAbsolute, resolve } from 'node:path';
import type { StatusRange } from './types.js';
import { accept, listOf, reject, type Parser } from './parsers.js';

/** Longer than any real health endpoint; a longer value is a pasted mistake. */
const MAX_PATH_CHARS = 2048;
// Request-target characters (RFC 3986 path and query): visible ASCII except space, '"', '<', '>',
// '\', '^', '`', '{', '|', '}' and '#' (a fragment is never sent).
const ORIGIN_FORM = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/?[\]]*$/;

/** '' (TCP checks) or an origin-form request target such as /healthz or /status?full=1. */
export const healthPath: Parser<string> = (text) => {
  if (text === '') return accept('');
  const expected = 'a path starting with / (such as /healthz), without spaces or #fragment';
  if (text.length > MAX_PATH_CHARS) return reject(text, `${expected}, at most ${MAX_PATH_CHARS} characters`);
  return ORIGIN_FORM.test(text) ? accept(text) : reject(text, expected);
};

const statusItem: Parser<StatusRange> = (text) => {
  const expected = 'a status code from 100 to 599 or a class such as 2xx';
  const cls = /^([1-5])xx$/i.exec(text);
  if (cls) {
    const from = Number(cls[1]) * 100;
    return accept({ from, to: from + 99 });
  }
  if (!/^\d{3}$/.test(text)) return reject(text, expected);
  const code = Number(text);
  return code >= 100 && code <= 599 ? accept({ from: code, to: code }) : reject(text, expected);
};

// Every status from 100 to 599 listed singly is 500 items; more than that repeats itself.
const statusList = listOf(statusItem, { max: 500, identity: (r) => `${r.from}-${r.to}` });

/** "2xx", "200,204", "2xx,301": at least one item. */
export const statusRanges: Parser<StatusRange[]> = (text) => {
  const parsed = statusList(text);
  if (parsed.ok && parsed.value.length === 0) return reject(text, 'at least one status code or class, such as 2xx');
  return parsed;
};

/** True when `status` falls in one of `ranges`. */
export function statusAccepted(status: number, ranges: readonly StatusRange[]): boolean {
  for (const r of ranges) if (status >= r.from && status <= r.to) return true;
  return false;
}

/** '' (no file) or a path, made absolute against the start-up directory so a reload finds it again. */
export const envFilePath: Parser<string> = (text) => {
  if (text === '') return accept('');
  if (text.includes('\0')) return reject(text, 'a file path');
  return accept(isAbsolute(text) ? text : resolve(text));
};
