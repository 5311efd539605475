// Discovery sources a pool may declare beside (or instead of) its static upstream list. Plain data,
// checked by the config file reader and run by src/discovery; here so pools can carry them.

/** Where a backend came from (shown by /api/pools). */
export type BackendSource = 'static' | 'dns' | 'etcd' | 'file' | 'registry';

/** Re-resolved as the records' TTL says, clamped to [minTtlMs, maxTtlMs]. */
export interface DnsDiscovery {
  readonly kind: 'dns';
  readonly name: string;
  readonly type: 'A' | 'AAAA' | 'SRV';
  /** A/AAAA: the backends' port. SRV records carry their own (this is then unused, 0). */
  readonly port: number;
  readonly scheme: 'http:' | 'https:';
  readonly minTtlMs: number;
  readonly maxTtlMs: number;
}

/** Each key under `prefix` is one backend: {"url", "weight", "zone"}, usually held by a lease. */
export interface EtcdDiscovery {
  readonly kind: 'etcd';
  readonly endpoints: readonly string[];
  readonly prefix: string;
}

/** A JSON file of backends, re-read when it changes. */
export interface FileDiscovery {
  readonly kind: 'file';
  readonly path: string;
}

export type DiscoverySpec = DnsDiscovery | EtcdDiscovery | FileDiscovery;

/** A pool's discovery: its sources, and whether the registration API may add to it. */
export interface PoolDiscovery {
  readonly sources: readonly DiscoverySpec[];
  /** `registry: true`, or any source: PUT /api/registry/:pool is accepted for this pool. */
  readonly registry: boolean;
}

export const NO_DISCOVERY: PoolDiscovery = { sources: [], registry: false };
