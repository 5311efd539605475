// What an L4 listener forwards to: a pool (its backends' addresses by table slot, a balancing
// policy over the shared table, the PROXY header it wants), and for TLS passthrough the table of
// server names that choose among pools.
//
// Both are built by the control plane when configuration or membership changes and swapped into a
// listener whole (TcpProxy.setRoutes / UdpProxy.setPool); connections already relaying keep the
// backend they have.

import type { Member, Policy } from '../balancer/policy.js';

export interface L4Backend extends Member {
  readonly host: string;
  readonly port: number;
}

export type ProxyProtocolVersion = 'v1' | 'v2';

export interface L4PoolSpec {
  readonly name: string;
  readonly backends: readonly L4Backend[];
  /** Built over `backends` (createPolicy from balancer/registry.ts; 'least-conn' for L4 by default). */
  readonly policy: Policy;
  /** Send a PROXY header of this version ahead of every backend connection; null for none. */
  readonly proxyProtocol?: ProxyProtocolVersion | null;
  /**
   * Whether the policy reads the affinity key (ring-hash, maglev). When false the client address is
   * not hashed, nor even asked of the kernel (getpeername) on plain TCP. Default true.
   */
  readonly needsHash?: boolean;
}

export class L4Pool {
  readonly name: string;
  readonly policy: Policy;
  readonly proxyProtocol: ProxyProtocolVersion | null;
  readonly needsHash: boolean;
  readonly backends: readonly L4Backend[];
  readonly #bySlot = new Map<number, L4Backend>();

  constructor(spec: L4PoolSpec) {
    this.name = spec.name;
    this.policy = spec.policy;
    this.proxyProtocol = spec.proxyProtocol ?? null;
    this.needsHash = spec.needsHash ?? true;
    this.backends = spec.backends;
    for (const b of spec.backends) this.#bySlot.set(b.slot, b);
  }

  /** The backend in `slot`, or undefined when it is not a member (a stale pick). */
  backend(slot: number): L4Backend | undefined {
    return this.#bySlot.get(slot);
  }
}

/**
 * Server name → pool for TLS passthrough. Keys are exact names ("api.example.com") or wildcards
 * ("*.example.com", which matches any name ending in ".example.com", several labels deep too, as
 * nginx's server_name does, but not "example.com" itself). Exact beats wildcard; among wildcards
 * the longest suffix wins. Names compare case-insensitively (the SNI reader lower-cases).
 */
export class SniTable {
  readonly default: L4Pool | null;
  readonly #exact = new Map<string, L4Pool>();
  readonly #suffix = new Map<string, L4Pool>();

  constructor(names: Readonly<Record<string, L4Pool>> | ReadonlyMap<string, L4Pool>, defaultPool: L4Pool | null = null) {
    this.default = defaultPool;
    const entries = names instanceof Map ? [...names] : Object.entries(names);
    for (const [key, pool] of entries) {
      const k = key.toLowerCase();
      if (k.startsWith('*.') && k.length > 2) this.#suffix.set(k.slice(1), pool);
      else if (k.includes('*')) throw new TypeError(`SNI pattern "${key}": a wildcard is only allowed as a leading "*."`);
      else this.#exact.set(k, pool);
    }
  }

  /** Every pool a name (or the default) can choose, each once. */
  pools(): L4Pool[] {
    const all = new Set<L4Pool>(this.#exact.values());
    for (const p of this.#suffix.values()) all.add(p);
    if (this.default !== null) all.add(this.default);
    return [...all];
  }

  /** The pool for a server name ('' when the hello carried none), or null when nothing matches. */
  match(name: string): L4Pool | null {
    if (name === '') return this.default;
    const exact = this.#exact.get(name);
    if (exact !== undefined) return exact;
    // Leftmost dot first: the longest suffix is tried first.
    for (let i = name.indexOf('.'); i > 0; i = name.indexOf('.', i + 1)) {
      const p = this.#suffix.get(name.slice(i));
      if (p !== undefined) return p;
    }
    return this.default;
  }
}
