// The client address the edge policy judges: the peer's, or, when the peer is a trusted proxy
// (SLUICE_TRUSTED_PROXIES), the right-most X-Forwarded-For entry that is not itself a trusted
// proxy. Entries a client wrote further left are never believed. ::ffff:a.b.c.d counts as a.b.c.d.

import type { HttpRequest } from 'uWebSockets.js';

export function effectiveClient(req: HttpRequest, peer: string, peerTrusted: boolean, trusted: ReadonlySet<string>): string {
  if (!peerTrusted) return peer;
  const xff = req.getHeader('x-forwarded-for');
  if (xff === '') return peer;
  const parts = xff.split(',');
  let addr = peer;
  for (let i = parts.length - 1; i >= 0; i--) {
    const a = unmapped(parts[i]!.trim());
    if (a === '') break;
    addr = a;
    if (!trusted.has(a)) break;
  }
  return addr;
}

function unmapped(a: string): string {
  return a.length > 7 && a.slice(0, 7).toLowerCase() === '::ffff:' && a.includes('.') ? a.slice(7) : a;
}
