// The upstream half of a WebSocket handshake, derived from the request head the HTTP path builds
// (request-head.ts): the same validation, forwarding headers, route header edits and octet rule,
// minus what the upstream WebSocket client owns (its own key, version and extension offer).

/** Headers the upstream client writes itself: the key and version are its own, extensions are never offered. */
const CLIENT_OWNED = new Set(['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol']);

/** Any octet outside ASCII: such a string is re-expressed as its UTF-8 octets, one character each. */
const NON_ASCII = /[^\x00-\x7f]/;

export interface UpstreamHandshake {
  /** Request target (path and query) as an octet string (see `octets`). */
  readonly target: string;
  /** Header name → value (or values, in order), octet strings. Host first. */
  readonly headers: Record<string, string | string[]>;
}

/**
 * Node's HTTP client writes the request head as latin1 (one octet per character). Sluice's parts
 * are strings decoded from the client's UTF-8, so each goes out as the string whose characters are
 * its UTF-8 octets: the backend receives exactly the octets the client sent (README, "Security").
 */
export function octets(s: string): string {
  return NON_ASCII.test(s) ? Buffer.from(s, 'utf8').toString('latin1') : s;
}

/**
 * Split a head from RequestHeadBuilder ("GET /p HTTP/1.1\r\nname: value\r\n...\r\n\r\n") into the
 * target and headers the upstream client sends. The builder has validated every part (no CR, LF
 * or NUL can be inside a value) and dropped the hop-by-hop headers (Connection, Upgrade...).
 */
export function upstreamHandshake(head: string): UpstreamHandshake {
  const lines = head.split('\r\n');
  const requestLine = lines[0]!;
  const target = requestLine.slice(requestLine.indexOf(' ') + 1, requestLine.lastIndexOf(' '));
  const headers: Record<string, string | string[]> = Object.create(null);
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    const colon = line.indexOf(': ');
    const name = line.slice(0, colon);
    if (CLIENT_OWNED.has(name)) continue;
    const value = octets(line.slice(colon + 2));
    const prev = headers[name];
    if (prev === undefined) headers[name] = value;
    else if (typeof prev === 'string') headers[name] = [prev, value];
    else prev.push(value);
  }
  return { target: octets(target), headers };
}

/** The subprotocols a client offered ("chat, superchat" → ["chat", "superchat"]); [] for none. */
export function offeredProtocols(header: string): string[] {
  if (header === '') return [];
  const out: string[] = [];
  for (const token of header.split(',')) {
    const p = token.trim();
    if (p !== '') out.push(p);
  }
  return out;
}

/** Close codes that may be sent in a close frame (RFC 6455 §7.4; 1004-1006 and 1015 are reserved). */
export function sendableCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}
