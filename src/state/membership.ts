// Control plane: assigns backends to table slots and publishes them with the generation counter.
// A backend is one (pool, upstream URL) pair. It keeps its slot across reloads (matched by pool and
// URL) so its counters and EWMA carry over. A backend that leaves keeps its slot while it drains:
// the slot is handed out again (reclaim) only once every worker has applied a membership without it
// (the generation each worker acknowledged) and no request or connection holds it any more; until
// then a backend that comes back gets its old slot. Pools get stable indices into the table's pool
// words (layout.ts).

import type { Backend, Upstream } from '../model/upstream.js';
import { DEFAULT_POOL } from '../model/pool.js';
import { Admin, C, CAPACITY, COLUMNS, H, Health, MAX_POOLS, MAX_WORKERS, WEIGHT_SCALE, toStamp, workerCell } from './layout.js';
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
  /** Slots of backends that left, by key: the generation that published their removal. */
  readonly #leaving = new Map<string, { slot: number; generation: number }>();
  /** Drained slots, ready to be handed out again (lowest first keeps the used range small). */
  readonly #free: number[] = [];
  /** Whether assignPools ran before: backends added later get slow start (at start all are new alike). */
  #assigned = false;
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
    const listed = new Set<string>();
    for (const pool of pools) {
      const poolIndex = this.poolIndex(pool.name);
      for (const u of pool.upstreams) {
        const key = pool.name + '\0' + u.url;
        listed.add(key);
        this.#leaving.delete(key);
        let slot = this.#slots.get(key);
        if (slot === undefined) {
          slot = this.#free.shift() ?? this.#next;
          if (slot >= CAPACITY) throw new Error(`backend table full (${CAPACITY} slots)`);
          if (slot === this.#next) this.#next++;
          this.#slots.set(key, slot);
          t.set(C.HEALTH, slot, Health.UNKNOWN);
          t.add(C.SLOT_GEN, slot, 1);
          // Joining a running pool: ramp its share up (an active check that passes sets this again).
          if (this.#assigned) t.set(C.SLOW_START_AT, slot, toStamp(t.now()));
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
    const generation = t.addHeader(H.GENERATION, 1) + 1;
    for (const [key, slot] of this.#slots) {
      if (!listed.has(key) && !this.#leaving.has(key)) this.#leaving.set(key, { slot, generation });
    }
    this.#assigned = true;
    return backends;
  }

  /** Slots of backends that left and are not reusable yet. */
  get leaving(): number {
    return this.#leaving.size;
  }

  /**
   * Hand drained slots back: a slot whose removal was published at a generation every worker has
   * applied (`applied`, the lowest generation any live worker acknowledged) and that no request
   * and no connection holds. Its columns are zeroed (a new backend starts from nothing) and it is
   * reused by the next backend that joins. Returns the slots freed.
   */
  reclaim(applied: number): number[] {
    const t = this.#table;
    const freed: number[] = [];
    for (const [key, leaving] of this.#leaving) {
      const { slot, generation } = leaving;
      if (generation > applied) continue;
      if (t.get(C.IN_FLIGHT, slot) !== 0 || t.get(C.OPEN_CONNS, slot) !== 0) continue;
      this.#leaving.delete(key);
      this.#slots.delete(key);
      for (let column = 0; column < COLUMNS; column++) if (column !== C.SLOT_GEN) t.set(column, slot, 0);
      for (let w = 0; w < MAX_WORKERS; w++) Atomics.store(t.words, workerCell(w, slot), 0);
      t.set(C.ADMIN, slot, Admin.DISABLED);
      freed.push(slot);
    }
    if (freed.length > 0) {
      this.#free.push(...freed);
      this.#free.sort((a, b) => a - b);
    }
    return freed;
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
