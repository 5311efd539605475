// The upstream half of a WebSocket handshake, derived from the request head the HTTP path builds
// (request-head.ts): the same validation, forwarding headers, route header edits and octet rule,
// minus what the upstream leg owns (its own key, version, subprotocol and extension offer).

/** Headers the upstream leg writes itself: the key and version are its own, extensions are never offered. */
const CLIENT_OWNED = new Set(['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol']);

/**
 * The upstream handshake's head from one built by RequestHeadBuilder ("GET /p HTTP/1.1\r\nname:
 * value\r\n...\r\n\r\n"): the same request line and headers, minus the client-owned ones and
 * the blank line, so the upstream leg can add its own key, version and offer. The builder has
 * validated every part (no CR, LF or NUL inside a value) and dropped the hop-by-hop headers
 * (Connection, Upgrade...). The result is written as UTF-8, as the HTTP path writes its heads
 * (connection.ts): the builder's strings are the client's UTF-8, so its octets go out unchanged.
 */
export function upstreamHead(head: string): string {
  const lines = head.split('\r\n');
  let out = lines[0]! + '\r\n';
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    if (CLIENT_OWNED.has(line.slice(0, line.indexOf(': ')))) continue;
    out += line + '\r\n';
  }
  return out;
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
