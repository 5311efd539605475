// Parsers for Sluice's structured values: the listen address, upstream URLs, IP addresses and the
// hash key. Built on parsers.ts; the table of variables in variables.ts says which one reads what.

import { isIP } from 'node:net';
import type { HashKey, Upstream } from './types.js';
import { accept, decimal, integer, reject, type Parsed, type Parser } from './parsers.js';

const port = integer(1, 65535);

// RFC 1123 host names; all-numeric names are sent to the IPv4 check instead, so "300.1.1.1" fails.
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const NUMERIC_HOST = /^[\d.]+$/;

export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * "host:port", "[ipv6]:port", ":port" or a bare "port" (the last two listen on every IPv4 address).
 * The returned IPv6 host has no brackets: uWS and net take the bare address.
 */
export const listenAddress: Parser<ListenAddress> = (text) => {
  const expected = 'host:port, [ipv6]:port or :port, with a port from 1 to 65535';
  let host: string;
  let portText: string;
  if (/^\d+$/.test(text)) {
    host = '';
    portText = text;
  } else if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return reject(text, expected);
    host = text.slice(1, close);
    if (isIP(host) !== 6) return reject(text, 'an IPv6 address inside the brackets, as in [::]:8080');
    portText = text.slice(close + 2);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return reject(text, expected);
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return reject(text, 'an IPv6 address in brackets, as in [::1]:8080');
    const validName = NUMERIC_HOST.test(host) ? isIP(host) === 4 : HOSTNAME.test(host);
    if (host !== '' && !validName) return reject(text, `${expected} (host "${host}" is not an IP address or host name)`);
  }
  const parsedPort = port(portText);
  if (!parsedPort.ok) return reject(text, expected);
  return accept({ host: host === '' ? '0.0.0.0' : host, port: parsedPort.value });
};

/** Upper bound so one typo (weight=10000) cannot starve every other backend. */
const MAX_WEIGHT = 1000;
const weight = decimal(0, MAX_WEIGHT, true);

/**
 * "http(s)://host[:port][/][?weight=N]". No credentials, path, fragment or other query: Sluice
 * forwards the client's path unchanged, so a path here would silently be ignored.
 * `url` is normalised to "scheme://host:port" (IPv6 bracketed, default port written out) and is
 * what duplicates are detected by; `host` is bare (no brackets), ready for a socket connect.
 */
export const upstream: Parser<Upstream> = (text) => {
  if (/^(tcp|udp):\/\//i.test(text)) return l4Upstream(text);
  if (!/^https?:\/\//i.test(text)) return reject(text, 'an http:// or https:// URL (tcp:// or udp:// for L4 pools)');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return reject(text, 'a valid URL such as http://10.0.0.5:8080');
  }
  if (url.username !== '' || url.password !== '') return reject(text, 'a URL without user:password');
  if (url.pathname !== '/') return reject(text, `a URL without a path (got "${url.pathname}")`);
  if (url.hash !== '') return reject(text, 'a URL without a #fragment');
  const keys = [...url.searchParams.keys()];
  if (keys.some((k) => k !== 'weight') || keys.length > 1) return reject(text, 'no query other than ?weight=N');
  let w = 1;
  const weightText = url.searchParams.get('weight');
  if (weightText !== null) {
    const parsed = weight(weightText);
    if (!parsed.ok) return reject(text, `?weight= to be a number > 0 and <= ${MAX_WEIGHT}`);
    w = parsed.value;
  }
  const protocol = url.protocol === 'https:' ? 'https:' : 'http:';
  // WHATWG URL drops a port equal to the scheme's default, so '' covers both "absent" and ":80".
  const portNumber = url.port === '' ? (protocol === 'https:' ? 443 : 80) : Number(url.port);
  if (portNumber < 1) return reject(text, 'a port from 1 to 65535');
  const bare = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return accept({ url: `${protocol}//${url.hostname}:${portNumber}`, protocol, host: bare, port: portNumber, weight: w });
};

/**
 * "tcp://host:port" or "udp://host:port" (port required, no default), optionally ?weight=N: the
 * upstreams of L4 pools (docs/l4.md). Same host rules as http:// (a WHATWG URL with a special
 * scheme would accept what net cannot connect to, so the host is checked through an http:// URL).
 */
function l4Upstream(text: string): Parsed<Upstream> {
  const scheme = text.slice(0, 3).toLowerCase() as 'tcp' | 'udp';
  const asHttp = upstream(`http${text.slice(3)}`);
  if (!asHttp.ok) return reject(text, `a ${scheme}:// URL such as ${scheme}://10.0.0.7:${scheme === 'tcp' ? 5432 : 53}`);
  if (!/:\d+(\/|\?|$)/.test(text.slice(6))) return reject(text, `a ${scheme}:// URL with a port, such as ${scheme}://10.0.0.7:${scheme === 'tcp' ? 5432 : 53}`);
  const u = asHttp.value;
  const host = u.host.includes(':') ? `[${u.host}]` : u.host;
  return accept({ ...u, url: `${scheme}://${host}:${u.port}`, protocol: `${scheme}:` });
}

/**
 * One exact IPv4 or IPv6 address. IPv6 is written in its canonical compressed lower-case form, the
 * form sockets report, so "0:0:0:0:0:0:0:1" matches a peer at "::1".
 */
export const ipAddress: Parser<string> = (text) => {
  if (text.includes('/')) return reject(text, 'an IP address (CIDR ranges are not supported)');
  const family = isIP(text);
  if (family === 0) return reject(text, 'an IPv4 or IPv6 address');
  if (family === 4) return accept(text);
  try {
    return accept(new URL(`http://[${text}]/`).hostname.slice(1, -1));
  } catch {
    // Zone ids ("fe80::1%eth0") are valid for net but not for URL: keep them as written.
    return accept(text.toLowerCase());
  }
};

// RFC 9110 token: what a header name (and an RFC 6265 cookie name) may contain.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** "ip", "header:<name>" (name lower-cased, as header lookups are) or "cookie:<name>" (kept as is). */
export const hashKey: Parser<HashKey> = (text) => {
  const expected = '"ip", "header:<name>" or "cookie:<name>", with <name> an HTTP token';
  if (text.toLowerCase() === 'ip') return accept({ kind: 'ip' });
  const colon = text.indexOf(':');
  if (colon < 0) return reject(text, expected);
  const kind = text.slice(0, colon).trim().toLowerCase();
  const name = text.slice(colon + 1).trim();
  if (!TOKEN.test(name)) return reject(text, expected);
  if (kind === 'header') return accept({ kind, name: name.toLowerCase() });
  if (kind === 'cookie') return accept({ kind, name });
  return reject(text, expected);
};

/**
 * A DNS resolver for discovery: "IP" or "IP:port" (IPv6 as "[addr]" or "[addr]:port"), port 53 by
 * default; kept as written, which is what node:dns setServers takes.
 */
export const dnsServer: Parser<string> = (text) => {
  const expected = 'an IP address with an optional port: 10.0.0.2, 127.0.0.1:5353, [fd00::53]:53';
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d{1,5}))?$/.exec(text);
  if (m === null) return reject(text, expected);
  const ip = m[1] ?? m[2]!;
  if (isIP(ip) === 0 || (m[2] !== undefined && isIP(ip) !== 4)) return reject(text, expected);
  if (m[3] !== undefined && (Number(m[3]) < 1 || Number(m[3]) > 65535)) return reject(text, expected);
  return accept(text);
};
