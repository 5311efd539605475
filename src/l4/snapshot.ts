// What an L4 thread reports per listener (admin /metrics, /api/status, the status page): plain
// numbers since the thread started, posted to the control plane on request.

export interface L4PoolSnapshot {
  pool: string;
  /** Backend connections established (UDP: sessions started). */
  opened: number;
  /** Open relays (UDP: live sessions). */
  active: number;
  /** Connect refusals and timeouts (UDP: sessions ended by a backend error). */
  connectFailures: number;
  /** Client → backend and backend → client bytes, open relays included. */
  bytesIn: number;
  bytesOut: number;
}

export interface L4ListenerSnapshot {
  name: string;
  kind: 'tcp' | 'tls-passthrough' | 'udp';
  address: string;
  pools: L4PoolSnapshot[];
  accepted: number;
  opened: number;
  active: number;
  connectFailures: number;
  retries: number;
  /** TCP: clients closed with no backend reachable; UDP: datagrams dropped. */
  noBackend: number;
  rejected: number;
  idleClosed: number;
  bytesIn: number;
  bytesOut: number;
}
