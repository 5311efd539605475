// One write per backend socket per event-loop turn: frames toward a backend are appended to a
// scratch buffer and written together in a setImmediate, which runs after every socket uWS read in
// this turn has been handled. Before this, each client message was one write(2) to its backend
// (profile in docs/websocket.md: 40% of the worker's time in writeBuffer).
//
// Scratch buffers come from a small per-thread free list and go back to it once the kernel has
// taken their bytes (the socket queued nothing), so a busy worker reuses a handful of buffers
// instead of allocating one per turn, and an idle WebSocket holds none.

/** A scratch buffer's size: large enough for a turn's worth of small messages on one socket. */
export const SCRATCH_BYTES = 16 * 1024;
/** Free buffers kept per thread (1 MiB): beyond this, returned buffers are left to the GC. */
const FREE_MAX = 64;

export interface Batched {
  /** Write what was appended this turn. */
  flush(): void;
}

const free: Buffer[] = [];
const pending: Batched[] = [];
let scheduled = false;

export function takeScratch(): Buffer {
  return free.pop() ?? Buffer.allocUnsafeSlow(SCRATCH_BYTES);
}

/** A scratch buffer the socket no longer references. */
export function giveBack(b: Buffer): void {
  if (free.length < FREE_MAX) free.push(b);
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
