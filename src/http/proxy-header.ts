// PROXY protocol on the HTTP listeners. This uWS build (v20.30) is compiled with PROXY v2 support:
// on every connection of every listener it reads a v2 header if one comes first, takes it off the
// stream, and reports its source through getProxiedRemoteAddress (empty without one). Sluice
// decides what that means per listener setting (SLUICE_ACCEPT_PROXY_PROTOCOL):
//   - accepted: the header's source is the client (X-Forwarded-For, trusted-proxy checks, hashing),
//     and a connection without one is refused (400), as HAProxy's accept-proxy refuses it: a
//     client reaching the listener directly must not pass for the front balancer's peer.
//   - not accepted: a PROXY header is not HTTP, so the request is refused (400), as the bytes would
//     be on a server without PROXY support; the address it claims is never used.
// uWS reads only v2; a v1 (text) header is not HTTP to it either way.

import type { HttpResponse } from 'uWebSockets.js';
import { formatAddress } from './client-address.js';

/** The request must be refused (see above). */
export const PROXY_REFUSAL = 0;

/**
 * The client address from the PROXY header when `accept` and there is one; null when `accept` is
 * off and there is none (use the socket's address); PROXY_REFUSAL otherwise.
 */
export function proxiedClient(res: HttpResponse, accept: boolean): string | null | typeof PROXY_REFUSAL {
  const raw = res.getProxiedRemoteAddress();
  if (raw.byteLength === 0) return accept ? PROXY_REFUSAL : null;
  if (!accept) return PROXY_REFUSAL;
  return formatAddress(new Uint8Array(raw));
}
