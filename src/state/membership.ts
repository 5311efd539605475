// Control plane: assigns backends to table slots and publishes them with the generation counter.
// A backend keeps its slot across reloads (matched by URL) so its counters and EWMA carry over;
// freed slots are not handed out again while a worker may still hold requests on them.

import type { Upstream } from '../config/types.js';
import type { Backend } from '../http/context.js';
import { Admin, C, CAPACITY, H, Health, WEIGHT_SCALE } from './layout.js';
import type { SharedTable } from './table.js';

export class Membership {
  readonly #table: SharedTable;
  /** URL → slot, for every slot ever assigned (a slot is never reused for another URL). */
  readonly #slots = new Map<string, number>();
  #next = 0;

  constructor(table: SharedTable) {
    this.#table = table;
  }

  /** Slots for `upstreams`, writing weights and resetting state for new ones; bumps the generation. */
  assign(upstreams: readonly Upstream[]): Backend[] {
    const t = this.#table;
    const backends: Backend[] = [];
    for (const u of upstreams) {
      let slot = this.#slots.get(u.url);
      if (slot === undefined) {
        if (this.#next >= CAPACITY) throw new Error(`backend table full (${CAPACITY} slots)`);
        slot = this.#next++;
        this.#slots.set(u.url, slot);
        t.set(C.HEALTH, slot, Health.UNKNOWN);
        t.add(C.SLOT_GEN, slot, 1);
      }
      t.set(C.ADMIN, slot, Admin.ENABLED);
      t.set(C.WEIGHT, slot, Math.max(1, Math.round(u.weight * WEIGHT_SCALE)));
      backends.push({ slot, weight: u.weight, id: `${u.host}:${u.port}`, upstream: u });
    }
    // Removed backends keep their table state: workers stop picking them when the new membership
    // message arrives. Zeroing their weight here would reach the workers first (shared memory is
    // instant, messages are not) and leave a worker still on the old set with nothing available.
    t.setHeader(H.SLOTS_USED, this.#next);
    t.addHeader(H.GENERATION, 1);
    return backends;
  }
}
