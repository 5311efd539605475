// One write per backend connection per event-loop turn: frames toward a backend are appended to a
// scratch buffer and written together in a setImmediate, which runs after every socket uWS read in
// this turn has been handled. Before this, each client message was one write(2) to its backend
// (profile in docs/websocket.md: 40% of the worker's time in writeBuffer).
//
// Scratch buffers come from a small per-thread free list and go back to it once the transport is
// done with their bytes (at once when the kernel took them, else when the write completes), so a
// busy worker reuses a handful of buffers instead of allocating one per turn, and an idle
// WebSocket holds none. Each carries its ArrayBuffer and a word view of it, made once: reading
// `.buffer` per frame was a runtime call, and masking writes words (frame-writer.ts).

/** A scratch buffer's size: large enough for a turn's worth of small messages on one socket. */
export const SCRATCH_BYTES = 16 * 1024;
/** Free buffers kept per thread (1 MiB): beyond this, returned buffers are left to the GC. */
const FREE_MAX = 64;

export interface Scratch {
  readonly bytes: Buffer;
  readonly mem: ArrayBuffer;
  readonly words: Uint32Array;
}

export interface Batched {
  /** Write what was appended this turn. */
  flush(): void;
}

const free: Scratch[] = [];
const pending: Batched[] = [];
let scheduled = false;

export function takeScratch(): Scratch {
  const s = free.pop();
  if (s !== undefined) return s;
  const mem = new ArrayBuffer(SCRATCH_BYTES);
  return { bytes: Buffer.from(mem), mem, words: new Uint32Array(mem) };
}

/** A scratch buffer no transport references any more. */
export function giveBack(s: Scratch): void {
  if (free.length < FREE_MAX) free.push(s);
}

/** Flush `b` at the end of this turn (once: callers keep their own queued flag). */
export function schedule(b: Batched): void {
  pending.push(b);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushAll);
  }
}

function flushAll(): void {
  // A flush never schedules another, but the length is read each time in case one ever does.
  for (let i = 0; i < pending.length; i++) pending[i]!.flush();
  pending.length = 0;
  scheduled = false;
}
