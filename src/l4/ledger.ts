// The open-connection counts one L4 thread holds, kept beside the shared table's OPEN_CONNS so a
// crash of that thread can be undone exactly: every open/close does one Atomics op on the shared
// column and one on this thread's own row (a small SharedArrayBuffer the control plane created and
// handed over). When the thread dies, the control plane calls `forget` with that buffer and takes
// its connections off OPEN_CONNS, as SharedTable.forgetWorker does for L7 in-flight requests.

import { C, CAPACITY } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';

export class ConnLedger {
  /** Hand this to the control plane (or create it there and pass it in). */
  readonly buffer: SharedArrayBuffer;
  readonly #own: Int32Array;
  readonly #table: SharedTable;

  constructor(table: SharedTable, buffer: SharedArrayBuffer = new SharedArrayBuffer(CAPACITY * 4)) {
    if (buffer.byteLength !== CAPACITY * 4) throw new Error(`ledger buffer is ${buffer.byteLength} bytes, expected ${CAPACITY * 4}`);
    this.buffer = buffer;
    this.#own = new Int32Array(buffer);
    this.#table = table;
  }

  open(slot: number): void {
    this.#table.add(C.OPEN_CONNS, slot, 1);
    Atomics.add(this.#own, slot, 1);
  }

  close(slot: number): void {
    this.#table.add(C.OPEN_CONNS, slot, -1);
    Atomics.sub(this.#own, slot, 1);
  }

  /** This thread's open connections on `slot`. */
  count(slot: number): number {
    return Atomics.load(this.#own, slot);
  }

  /**
   * Control plane, after the thread owning `buffer` died: its connections closed with it, so take
   * them off the shared counts and zero its row. Returns how many were taken off.
   */
  static forget(table: SharedTable, buffer: SharedArrayBuffer): number {
    const own = new Int32Array(buffer);
    let total = 0;
    for (let slot = 0; slot < CAPACITY; slot++) {
      const n = Atomics.exchange(own, slot, 0);
      if (n !== 0) {
        table.add(C.OPEN_CONNS, slot, -n);
        total += n;
      }
    }
    return total;
  }
}
