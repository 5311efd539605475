// Control plane: assigns backends to table slots and publishes them with the generation counter.
// A backend is one (pool, upstream URL) pair. It keeps its slot across reloads (matched by pool and
// URL) so its counters and EWMA carry over; freed slots are not handed out again while a worker may
// still hold requests on them. Pools get stable indices into the table's pool words (layout.ts).

import type { Backend, Upstream } from '../model/upstream.js';
import { DEFAULT_POOL } from '../model/pool.js';
import { Admin, C, CAPACITY, H, Health, MAX_POOLS, WEIGHT_SCALE } from './layout.js';
import type { SharedTable } from './table.js';

/** What membership needs of a pool: its name and upstreams. */
export interface PoolMembers {
  readonly name: string;
  readonly upstreams: readonly Upstream[];
}

export class Membership {
  readonly #table: SharedTable;
  /** "pool\0url" → slot, for every slot ever assigned (a slot is never reused for another backend). */
  readonly #slots = new Map<string, number>();
  /** Pool name → index in the pool region, never reused for another name. */
  readonly #pools = new Map<string, number>();
  #next = 0;

  constructor(table: SharedTable) {
    this.#table = table;
  }

  /** One pool's worth (the unrouted case): `upstreams` as the pool `pool`. */
  assign(upstreams: readonly Upstream[], pool = DEFAULT_POOL): Backend[] {
    return this.assignPools([{ name: pool, upstreams }]);
  }

  /**
   * Slots for every pool's upstreams, in declaration order (so a new pool's backends are one slot
   * range), writing weights and resetting state for new ones; bumps the generation.
   */
  assignPools(pools: readonly PoolMembers[]): Backend[] {
    const t = this.#table;
    const backends: Backend[] = [];
    for (const pool of pools) {
      const poolIndex = this.poolIndex(pool.name);
      for (const u of pool.upstreams) {
        const key = pool.name + '\0' + u.url;
        let slot = this.#slots.get(key);
        if (slot === undefined) {
          if (this.#next >= CAPACITY) throw new Error(`backend table full (${CAPACITY} slots)`);
          slot = this.#next++;
          this.#slots.set(key, slot);
          t.set(C.HEALTH, slot, Health.UNKNOWN);
          t.add(C.SLOT_GEN, slot, 1);
        }
        t.set(C.ADMIN, slot, Admin.ENABLED);
        t.set(C.WEIGHT, slot, Math.max(1, Math.round(u.weight * WEIGHT_SCALE)));
        backends.push({ slot, weight: u.weight, id: `${u.host}:${u.port}`, upstream: u, pool: pool.name, poolIndex });
      }
    }
    // Removed backends keep their table state: workers stop picking them when the new membership
    // message arrives. Zeroing their weight here would reach the workers first (shared memory is
    // instant, messages are not) and leave a worker still on the old set with nothing available.
    t.setHeader(H.SLOTS_USED, this.#next);
    t.addHeader(H.GENERATION, 1);
    return backends;
  }

  /** The pool's index in the table's pool words (assigned on first sight, then stable). */
  poolIndex(name: string): number {
    let index = this.#pools.get(name);
    if (index === undefined) {
      if (this.#pools.size >= MAX_POOLS) throw new Error(`too many pools (${MAX_POOLS} at most)`);
      index = this.#pools.size;
      this.#pools.set(name, index);
    }
    return index;
  }
}
