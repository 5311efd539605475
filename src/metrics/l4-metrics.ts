// Prometheus families for the L4 listeners, per listener and per listener and pool, from the
// counters the L4 threads report (l4/snapshot.ts). Counters restart from 0 when an L4 thread is
// replaced, which Prometheus' rate() reads as a counter reset.

import type { L4ListenerSnapshot } from '../l4/snapshot.js';
import { Exposition } from './prometheus.js';

export function renderL4Metrics(listeners: readonly L4ListenerSnapshot[], restarts: number): string {
  const out = new Exposition();
  out.family('sluice_l4_thread_restarts_total', 'counter', 'L4 threads that died and were replaced.').sample('sluice_l4_thread_restarts_total', {}, restarts);
  const perListener = (name: string, type: 'counter' | 'gauge', help: string, value: (l: L4ListenerSnapshot) => number): void => {
    out.family(name, type, help);
    for (const l of listeners) out.sample(name, { listener: l.name, kind: l.kind }, value(l));
  };
  perListener('sluice_l4_accepted_total', 'counter', 'Client connections accepted (UDP: sessions started).', (l) => l.accepted);
  perListener('sluice_l4_connections_opened_total', 'counter', 'Backend connections established (UDP: sessions).', (l) => l.opened);
  perListener('sluice_l4_connections_active', 'gauge', 'Client connections open now, any phase (UDP: live sessions).', (l) => l.active);
  perListener('sluice_l4_connect_failures_total', 'counter', 'Backend connects refused or timed out (UDP: sessions ended by a backend error).', (l) => l.connectFailures);
  perListener('sluice_l4_retries_total', 'counter', 'Connections moved to another backend after a connect failure.', (l) => l.retries);
  perListener('sluice_l4_no_backend_total', 'counter', 'Clients closed with no reachable backend (UDP: datagrams dropped).', (l) => l.noBackend);
  perListener('sluice_l4_rejected_total', 'counter', 'Clients closed for a bad or missing preface (PROXY header, ClientHello) or no SNI route.', (l) => l.rejected);
  perListener('sluice_l4_idle_closed_total', 'counter', 'Connections closed by the idle timeout (UDP: sessions expired).', (l) => l.idleClosed);
  perListener('sluice_l4_bytes_in_total', 'counter', 'Bytes from clients relayed to backends.', (l) => l.bytesIn);
  perListener('sluice_l4_bytes_out_total', 'counter', 'Bytes from backends relayed to clients.', (l) => l.bytesOut);

  const perPool = (name: string, type: 'counter' | 'gauge', help: string, value: (p: L4ListenerSnapshot['pools'][number]) => number): void => {
    out.family(name, type, help);
    for (const l of listeners) for (const p of l.pools) out.sample(name, { listener: l.name, pool: p.pool }, value(p));
  };
  perPool('sluice_l4_pool_connections_opened_total', 'counter', 'Backend connections established, by listener and pool.', (p) => p.opened);
  perPool('sluice_l4_pool_connections_active', 'gauge', 'Relays open now, by listener and pool.', (p) => p.active);
  perPool('sluice_l4_pool_connect_failures_total', 'counter', 'Backend connects refused or timed out, by listener and pool.', (p) => p.connectFailures);
  perPool('sluice_l4_pool_bytes_in_total', 'counter', 'Client to backend bytes, by listener and pool.', (p) => p.bytesIn);
  perPool('sluice_l4_pool_bytes_out_total', 'counter', 'Backend to client bytes, by listener and pool.', (p) => p.bytesOut);
  return out.text();
}
