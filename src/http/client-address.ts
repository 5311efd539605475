// The client's address as text, the way it should appear in X-Forwarded-For: IPv4 dotted (also
// when it arrived on a dual-stack socket as ::ffff:a.b.c.d), IPv6 in RFC 5952 short form.

import type { HttpResponse } from 'uWebSockets.js';
import { formatIPv6 } from '../model/address-text.js';

/**
 * IPv4 clients as text, by address: a proxy sees the same few client addresses over and over, and
 * formatting one costs four number-to-string conversions and three concatenations per request.
 * Bounded: cleared when full (a scan of many addresses only costs the formatting it saves).
 */
const V4_TEXT = new Map<number, string>();
const V4_TEXT_MAX = 4096;

export function clientAddress(res: HttpResponse): string {
  const b = new Uint8Array(res.getRemoteAddress());
  let at = -1;
  if (b.length === 4) at = 0;
  else if (b.length === 16 && b[10] === 0xff && b[11] === 0xff && b[0] === 0 && b[1] === 0 && b[2] === 0 && b[3] === 0 && b[4] === 0 && b[5] === 0 && b[6] === 0 && b[7] === 0 && b[8] === 0 && b[9] === 0) at = 12;
  if (at < 0) return formatAddress(b);
  const key = ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
  let text = V4_TEXT.get(key);
  if (text === undefined) {
    if (V4_TEXT.size >= V4_TEXT_MAX) V4_TEXT.clear();
    text = b[at] + '.' + b[at + 1] + '.' + b[at + 2] + '.' + b[at + 3];
    V4_TEXT.set(key, text);
  }
  return text;
}

export function formatAddress(b: Uint8Array): string {
  if (b.length === 4) return b[0] + '.' + b[1] + '.' + b[2] + '.' + b[3];
  if (b.length !== 16) return '';
  let mapped = b[10] === 0xff && b[11] === 0xff;
  for (let i = 0; mapped && i < 10; i++) if (b[i] !== 0) mapped = false;
  if (mapped) return b[12] + '.' + b[13] + '.' + b[14] + '.' + b[15];
  return formatIPv6(b);
}
