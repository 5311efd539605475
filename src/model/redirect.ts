// Redirect actions: a status and the Location built from the request. Either a literal `location`
// (sent as written, the request's query dropped), or parts that replace the request's own: scheme,
// host, port, path (or prefix_rewrite of the matched prefix), query ('' drops it). With only path
// parts the Location is relative ("/new?x=1"); with scheme, host or port it is absolute. The port:
// `port` when given; else the request's, unless the scheme changes (the old port belonged to the
// old scheme); a scheme's default port is never written.

import { STATUS_CODES } from 'node:http';
import { pathProblem } from './path.js';
import { hostProblem, replacePrefix } from './rewrite.js';
import type { RedirectSpec, RouteMatch } from './route.js';

export const REDIRECT_STATUSES = [301, 302, 303, 307, 308] as const;

/** The parts of a request a Location is built from. */
export interface RequestTarget {
  readonly scheme: 'http' | 'https';
  /** The Host header as sent (port included when sent). */
  readonly host: string;
  /** Raw path, without the query. */
  readonly path: string;
  /** Raw query, without "?"; '' for none. */
  readonly query: string;
}

export interface CompiledRedirect {
  readonly status: number;
  /** For uWS writeStatus: "301 Moved Permanently". */
  readonly statusLine: string;
  location(request: RequestTarget): string;
}

const ABSOLUTE = /^https?:\/\/[^/?#\s]+/i;
const UNSAFE = /[\u0000-\u0020\u007f]/;
const QUERY_FORBIDDEN = /[\u0000-\u0020\u007f#]/;
const DEFAULT_PORT = { http: 80, https: 443 } as const;

export function redirectProblems(spec: RedirectSpec, match: RouteMatch): string[] {
  const problems: string[] = [];
  if (!(REDIRECT_STATUSES as readonly number[]).includes(spec.status)) {
    problems.push(`status: ${spec.status} is not a redirect status (one of ${REDIRECT_STATUSES.join(', ')})`);
  }
  const parts = (['scheme', 'host', 'port', 'path', 'prefixRewrite', 'query'] as const).filter((k) => spec[k] !== undefined);
  if (spec.location !== undefined) {
    if (parts.length > 0) problems.push('location: give either location or the parts (scheme, host, port, path, prefix_rewrite, query), not both');
    if (UNSAFE.test(spec.location) || !(spec.location.startsWith('/') || ABSOLUTE.test(spec.location))) {
      problems.push(`location: ${JSON.stringify(spec.location)} is not a path starting with / or an http(s):// URL without spaces`);
    }
    return problems;
  }
  if (parts.length === 0) problems.push('needs location, or at least one of scheme, host, port, path, prefix_rewrite, query');
  if (spec.scheme !== undefined && spec.scheme !== 'http' && spec.scheme !== 'https') problems.push(`scheme: ${JSON.stringify(spec.scheme)} is not http or https`);
  if (spec.host !== undefined) {
    const p = hostProblem(spec.host);
    if (p !== null) problems.push(`host: ${p}`);
    else if (/:\d+$/.test(spec.host)) problems.push('host: give the port as port:, not in host');
  }
  if (spec.port !== undefined && !(Number.isInteger(spec.port) && spec.port >= 1 && spec.port <= 65535)) {
    problems.push(`port: ${spec.port} is not a port from 1 to 65535`);
  }
  if (spec.path !== undefined && spec.prefixRewrite !== undefined) problems.push('path: give either path or prefix_rewrite, not both');
  if (spec.path !== undefined) {
    const p = pathProblem(spec.path);
    if (p !== null) problems.push(`path: ${p}`);
  }
  if (spec.prefixRewrite !== undefined) {
    if (match.pathPrefix === undefined && match.path === undefined) problems.push('prefix_rewrite: needs match.path_prefix or match.path');
    const p = spec.prefixRewrite === '' ? null : pathProblem(spec.prefixRewrite);
    if (p !== null) problems.push(`prefix_rewrite: ${p}`);
  }
  if (spec.query !== undefined) {
    if (spec.query.startsWith('?')) problems.push('query: give it without the leading ?');
    else if (QUERY_FORBIDDEN.test(spec.query)) problems.push(`query: ${JSON.stringify(spec.query)} contains a space, control character or #`);
  }
  return problems;
}

export class RedirectError extends Error {
  override readonly name = 'RedirectError';
}

export function statusLine(status: number): string {
  const reason = STATUS_CODES[status];
  return reason === undefined ? String(status) : `${status} ${reason}`;
}

/** Throws RedirectError when redirectProblems finds any. */
export function compileRedirect(spec: RedirectSpec, match: RouteMatch): CompiledRedirect {
  const problems = redirectProblems(spec, match);
  if (problems.length > 0) throw new RedirectError(problems.join('; '));
  const line = statusLine(spec.status);
  if (spec.location !== undefined) {
    const fixed = spec.location;
    return { status: spec.status, statusLine: line, location: () => fixed };
  }
  const matched = match.pathPrefix ?? match.path ?? '';
  const absolute = spec.scheme !== undefined || spec.host !== undefined || spec.port !== undefined;
  return {
    status: spec.status,
    statusLine: line,
    location(request) {
      let path = spec.path ?? request.path;
      if (spec.prefixRewrite !== undefined) path = replacePrefix(request.path, matched, spec.prefixRewrite);
      const query = spec.query ?? request.query;
      const tail = query === '' ? path : `${path}?${query}`;
      const [sentName, sentPort] = splitHost(request.host);
      // A request without a Host (HTTP/1.0) gives nothing to build an absolute URL from.
      if (!absolute || (spec.host === undefined && sentName === '')) return tail;
      const scheme = spec.scheme ?? request.scheme;
      const port = spec.port ?? (scheme === request.scheme ? sentPort : undefined);
      const shownPort = port === undefined || port === DEFAULT_PORT[scheme] ? '' : `:${port}`;
      return `${scheme}://${spec.host ?? sentName}${shownPort}${tail}`;
    },
  };
}

/** "Example.com:8080" → ["example.com", 8080]; "[::1]" → ["[::1]", undefined]. */
export function splitHost(host: string): [string, number | undefined] {
  const close = host.startsWith('[') ? host.indexOf(']') : -1;
  const colon = host.lastIndexOf(':');
  if (colon < 0 || colon < close) return [host.toLowerCase(), undefined];
  const port = Number(host.slice(colon + 1));
  return [host.slice(0, colon).toLowerCase(), Number.isInteger(port) && port > 0 ? port : undefined];
}
