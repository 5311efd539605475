// The ground floor of the model: an upstream (an address and its weight) and a backend (an
// upstream with a slot in the shared table). Plain data, posted to workers as is.

import type { BackendSource } from './discovery.js';

export interface Upstream {
  /** As written by the user, normalised: "http://host:port" (or tcp:// / udp:// for L4 pools). */
  readonly url: string;
  /** tcp: and udp: are L4 upstreams (docs/l4.md); an L4 listener also takes http(s): for host and port. */
  readonly protocol: 'http:' | 'https:' | 'tcp:' | 'udp:';
  readonly host: string;
  readonly port: number;
  /** Relative weight, > 0. */
  readonly weight: number;
  /** Where it came from; absent means the static list (SLUICE_UPSTREAMS or the pool's upstreams). */
  readonly source?: BackendSource;
}

/**
 * One backend as published to workers: its slot in the shared table and where it lives. The
 * fields slot/weight/id are what a balancing policy needs of a member; `upstream` is the address.
 */
export interface Backend {
  /** Slot in the shared table. */
  readonly slot: number;
  /** Configured weight (> 0), before the table's scaling. */
  readonly weight: number;
  /** Stable identity used by hashing policies ("host:port"). */
  readonly id: string;
  readonly upstream: Upstream;
  /** The pool it belongs to, and that pool's index in the table's pool region (layout.ts). */
  readonly pool: string;
  readonly poolIndex: number;
}
