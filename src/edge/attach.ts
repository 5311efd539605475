// Compiles each route's edge policy for this worker and hangs it on the compiled route
// (CompiledRoute.edge), once per load. The shared rate table view is made once per worker.

import type { Logger } from 'pino';
import type { RouteTable } from '../model/route-table.js';
import type { SharedTable } from '../state/table.js';
import { deny } from './outcome.js';
import { EdgePolicy, writeDenial, type EdgeEnv } from './policy.js';
import { RateTable, SWEEP_EVERY_MS } from './rate-table.js';
import { closeRedisClients } from './redis-limit.js';
import type { EdgeGate } from '../model/edge.js';

let rates: { words: Int32Array; table: RateTable } | null = null;

/** Every route with an edge policy gets its gate; one that fails to compile refuses its requests (503). */
export function attachEdge(routes: RouteTable, table: SharedTable, trustedProxies: readonly string[], log: Logger): void {
  if (rates === null || rates.words !== table.words) {
    const rt = new RateTable(table.words, table.epoch);
    rates = { words: table.words, table: rt };
    setInterval(() => rt.sweep(), SWEEP_EVERY_MS).unref();
  }
  const env: EdgeEnv = { words: table.words, rates: rates.table, trusted: new Set(trustedProxies), log };
  for (const route of routes.routes) {
    const spec = route.spec.edge;
    if (spec === undefined) continue;
    try {
      route.edge = new EdgePolicy(spec, route, env);
    } catch (err) {
      log.error({ route: route.name, err: (err as Error).message }, 'edge policy did not compile: the route answers 503');
      route.edge = BROKEN;
    }
  }
}

const BROKEN_DENIAL = deny(503, 'route policy unavailable\n', 'x-sluice-error', 'edge');
const BROKEN: EdgeGate = {
  check(_req, res) {
    writeDenial(res, BROKEN_DENIAL, null);
    res.end(BROKEN_DENIAL.body, true);
    return false;
  },
  admit(ex) {
    ex.start();
  },
};

/** The worker is draining or crashing: close what the edge policies hold open (Redis connections). */
export function closeEdge(): void {
  closeRedisClients();
}
