// The upstream leg's own part of the handshake (RFC 6455 §4.1): the request lines it adds to the
// head Sluice built (its key, version and the client's subprotocol offer), and the checks a client
// must make on the backend's 101 before any frame is read.

import { createHash, randomBytes } from 'node:crypto';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\0\r\n]/;

export interface UpgradeRequest {
  /** The head's closing lines: Upgrade, Connection, the key, the version, the offer, the blank line. */
  readonly tail: string;
  /** The Sec-WebSocket-Accept the backend must answer with. */
  readonly accept: string;
}

export function upgradeRequest(protocols: readonly string[]): UpgradeRequest {
  const key = randomBytes(16).toString('base64');
  const accept = createHash('sha1').update(key + GUID).digest('base64');
  let tail = 'upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: ' + key + '\r\nsec-websocket-version: 13\r\n';
  // The offer as one line, in the client's order (hub.ts checked the tokens).
  if (protocols.length > 0) tail += 'sec-websocket-protocol: ' + protocols.join(',') + '\r\n';
  return { tail: tail + '\r\n', accept };
}

/** The status code of a response head (latin1, without its blank line), or -1 if the status line is malformed. */
export function statusOf(head: string): number {
  if (head.length < 12 || !head.startsWith('HTTP/1.') || head[8] !== ' ' || (head.length > 12 && head[12] !== ' ' && head[12] !== '\r')) return -1;
  const code = Number(head.slice(9, 12));
  return Number.isInteger(code) && code >= 100 ? code : -1;
}

export interface Upgraded {
  /** The subprotocol the backend chose ('' for none). */
  readonly protocol: string;
  /** Every header of the 101 as name/value pairs (lower-case names, latin1 values). */
  readonly headers: string[];
}

/**
 * Check a 101 head (latin1, without its blank line) against the request: Upgrade and Connection
 * name websocket / upgrade, the accept matches the key, the subprotocol (if any) was offered, no
 * extension was chosen (none was offered). Returns what the client needs, or why it is refused.
 *
 * A 101 naming no subprotocol when some were offered is accepted (§4.1 only forbids one that was
 * not offered): the client gets no subprotocol and decides for itself, as it would talking to the
 * backend directly.
 */
export function checkUpgrade(head: string, accept: string, offered: readonly string[]): Upgraded | string {
  const headers: string[] = [];
  let upgrade = false;
  let connection = false;
  let accepted = false;
  let protocol = '';
  let start = head.indexOf('\r\n');
  start = start < 0 ? head.length : start + 2;
  while (start < head.length) {
    let eol = head.indexOf('\r\n', start);
    if (eol < 0) eol = head.length;
    const line = head.slice(start, eol);
    start = eol + 2;
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!TOKEN.test(name)) return `malformed header line in the 101: ${JSON.stringify(line.slice(0, 64))}`;
    const value = line.slice(colon + 1).trim();
    if (BAD_VALUE.test(value)) return `malformed value in header ${name} of the 101`;
    const lower = name.toLowerCase();
    headers.push(lower, value);
    if (lower === 'upgrade') upgrade = value.toLowerCase() === 'websocket';
    else if (lower === 'connection') connection ||= value.toLowerCase().split(',').some((t) => t.trim() === 'upgrade');
    else if (lower === 'sec-websocket-accept') accepted = value === accept;
    else if (lower === 'sec-websocket-protocol') protocol = value;
    else if (lower === 'sec-websocket-extensions') return 'the backend chose an extension none was offered';
  }
  if (!upgrade) return 'the 101 has no Upgrade: websocket';
  if (!connection) return 'the 101 has no Connection: upgrade';
  if (!accepted) return 'the 101 has a wrong or no Sec-WebSocket-Accept';
  if (protocol !== '' && !offered.includes(protocol)) return `the backend chose subprotocol ${JSON.stringify(protocol)}, which was not offered`;
  return { protocol, headers };
}
