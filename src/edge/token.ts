// Where a bearer token comes from: the Authorization header (RFC 6750 §2.1), a cookie, or a query
// parameter (§2.3), tried in the order the route lists them. Read synchronously from the request.

import type { HttpRequest } from 'uWebSockets.js';
import type { TokenSource } from '../model/edge.js';

export function readToken(req: HttpRequest, query: string, from: readonly TokenSource[]): string {
  for (const src of from) {
    let t = '';
    if (src.kind === 'bearer') t = bearer(req.getHeader('authorization'));
    else if (src.kind === 'cookie') t = cookie(req.getHeader('cookie'), src.name);
    else t = queryParam(query, src.name);
    if (t !== '') return t;
  }
  return '';
}

export function bearer(value: string): string {
  if (value.length < 8 || value.slice(0, 7).toLowerCase() !== 'bearer ') return '';
  return value.slice(7).trim();
}

export function cookie(header: string, name: string): string {
  if (header === '') return '';
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return '';
}

export function queryParam(query: string, name: string): string {
  if (query === '') return '';
  return new URLSearchParams(query).get(name) ?? '';
}
