// The client's address as text, the way it should appear in X-Forwarded-For: IPv4 dotted (also
// when it arrived on a dual-stack socket as ::ffff:a.b.c.d), IPv6 in RFC 5952 short form.

import type { HttpResponse } from 'uWebSockets.js';

export function clientAddress(res: HttpResponse): string {
  return formatAddress(new Uint8Array(res.getRemoteAddress()));
}

export function formatAddress(b: Uint8Array): string {
  if (b.length === 4) return b[0] + '.' + b[1] + '.' + b[2] + '.' + b[3];
  if (b.length !== 16) return '';
  let mapped = b[10] === 0xff && b[11] === 0xff;
  for (let i = 0; mapped && i < 10; i++) if (b[i] !== 0) mapped = false;
  if (mapped) return b[12] + '.' + b[13] + '.' + b[14] + '.' + b[15];
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  // RFC 5952: compress the longest run (length >= 2) of zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return hex.slice(0, bestStart).join(':') + '::' + hex.slice(bestStart + bestLen).join(':');
}
