// Edge counters for /metrics, read from the shared table (layout.ts, "Edge counters"): per route
// and key kind or reason, never per key value or client (a client could otherwise grow the label
// set without bound). Only routes with an edge policy are listed.

import type { RouteSpec } from '../model/route.js';
import { E, MAX_ROUTES, edgeCell, routeInFlightCell } from '../state/layout.js';

const LIMITED: [string, number][] = [
  ['client_ip', E.LIMITED_CLIENT_IP],
  ['header', E.LIMITED_HEADER],
  ['jwt', E.LIMITED_JWT],
  ['route', E.LIMITED_ROUTE],
];
const DENIED: [string, number][] = [
  ['ip', E.IP_DENIED],
  ['unauthorized', E.UNAUTHORIZED],
  ['forbidden', E.FORBIDDEN],
  ['overloaded', E.OVERLOADED],
  ['auth_unavailable', E.AUTH_UNAVAILABLE],
];

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Prometheus text (ends with a newline), or '' when no route has an edge policy. */
export function renderEdgeMetrics(words: Int32Array, routes: readonly RouteSpec[]): string {
  const edged = routes.map((r, i) => ({ r, i })).filter(({ r, i }) => r.edge !== undefined && i < MAX_ROUTES);
  if (edged.length === 0) return '';
  const out: string[] = [];
  const family = (name: string, type: string, help: string, rows: (route: string, i: number) => string[]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const { r, i } of edged) out.push(...rows(esc(r.name), i));
  };
  const read = (i: number, c: number) => Atomics.load(words, edgeCell(i, c));
  family('sluice_edge_rate_limited_total', 'counter', 'Requests answered 429 by a rate limit, by route and key kind.', (route, i) =>
    LIMITED.map(([kind, c]) => `sluice_edge_rate_limited_total{route="${route}",key="${kind}"} ${read(i, c)}`),
  );
  family('sluice_edge_denied_total', 'counter', 'Requests refused by the edge policy (IP lists 403, auth 401/403 or 503 when it cannot check, max_in_flight 503), by route and reason.', (route, i) =>
    DENIED.map(([reason, c]) => `sluice_edge_denied_total{route="${route}",reason="${reason}"} ${read(i, c)}`),
  );
  family('sluice_edge_redis_unavailable_total', 'counter', 'Global rate-limit decisions made without Redis: fallback to the local limit (open) or 503 (closed).', (route, i) => [
    `sluice_edge_redis_unavailable_total{route="${route}",fail="open"} ${read(i, E.REDIS_FALLBACK)}`,
    `sluice_edge_redis_unavailable_total{route="${route}",fail="closed"} ${read(i, E.REDIS_CLOSED)}`,
  ]);
  family('sluice_edge_cors_preflights_total', 'counter', 'CORS preflights answered by Sluice, by result.', (route, i) => [
    `sluice_edge_cors_preflights_total{route="${route}",result="allowed"} ${read(i, E.CORS_PREFLIGHT)}`,
    `sluice_edge_cors_preflights_total{route="${route}",result="refused"} ${read(i, E.CORS_REFUSED)}`,
  ]);
  family('sluice_edge_in_flight', 'gauge', 'Requests in flight on routes with max_in_flight.', (route, i) =>
    routes[i]!.edge?.maxInFlight === undefined ? [] : [`sluice_edge_in_flight{route="${route}"} ${Atomics.load(words, routeInFlightCell(i))}`],
  );
  return out.join('\n') + '\n';
}
