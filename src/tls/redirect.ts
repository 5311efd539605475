// SLUICE_REDIRECT_HTTPS=1: the plain listener's only route. Every request gets 308 (method and body
// kept, RFC 9110 §15.4.9) to the same host, path and query on the TLS listener; nothing is proxied.

import type { HttpRequest, HttpResponse } from 'uWebSockets.js';

// A host name or IPv4 address, or a bracketed IPv6 address, with an optional port to drop.
const HOST = /^([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/** A handler that redirects to https on `tlsPort` (written out unless it is 443). */
export function redirectToHttps(tlsPort: number): (res: HttpResponse, req: HttpRequest) => void {
  const portSuffix = tlsPort === 443 ? '' : `:${tlsPort}`;
  return (res, req) => {
    const host = HOST.exec(req.getHeader('host'))?.[1];
    if (host === undefined) {
      // Without a usable Host there is no URL to send the client to.
      res.writeStatus('400 Bad Request').writeHeader('content-type', 'text/plain').end('missing or malformed Host header\n', true);
      return;
    }
    const query = req.getQuery();
    const location = 'https://' + host + portSuffix + req.getUrl() + (query ? '?' + query : '');
    res.writeStatus('308 Permanent Redirect').writeHeader('location', location).end();
  };
}
