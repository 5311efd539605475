// The head-of-line bound on upstream pipelining. A request pipelined behind another waits for that
// response first; if the backend is slow with it (or its client reads slowly), every request behind
// inherits the wait. This module watches the connections that carry queued requests and, once the
// response ahead has taken longer than the pool's bound, has the connection send its queued
// requests again on other connections (connection.ts `hedge`). One timer per worker thread, armed
// only while some connection has requests queued: nothing runs for a worker that is not pipelining.

/** What the guard needs from a connection with requests queued behind the one being answered. */
export interface Guarded {
  /** Set by the guard while it watches this connection (so it is added once). */
  watched: boolean;
  /**
   * Milliseconds until the queued requests have waited too long (≤ 0: they have); null when
   * nothing is queued any more (the guard forgets the connection).
   */
  holLeft(): number | null;
  /** The wait is over the bound: send the queued requests elsewhere. */
  hedge(): void;
}

const watched = new Set<Guarded>();
let timer: NodeJS.Timeout | null = null;
/** performance.now() at which the armed timer was meant to fire. */
let due = 0;
/** The last check was put off because the loop ran late: the next one judges whatever the lag. */
let deferred = false;
/** check() is running: a connection it makes watched is visited by the same pass. */
let checking = false;

/**
 * A timer that fires this much after it was due means this thread's loop was stalled (GC, a long
 * callback): the responses may be sitting unread in the sockets, so the backend is not to blame.
 * The guard lets one poll phase run before it judges.
 */
const LATE_MS = 5;

/** Watch `conn`: its queue just became non-empty. */
export function watch(conn: Guarded): void {
  if (conn.watched) return;
  conn.watched = true;
  watched.add(conn);
  if (timer === null && !checking) arm(conn.holLeft() ?? 1);
}

function arm(delayMs: number): void {
  const delay = delayMs < 1 ? 1 : delayMs;
  due = performance.now() + delay;
  timer = setTimeout(check, delay);
  timer.unref();
}

function check(): void {
  timer = null;
  if (!deferred && performance.now() - due > LATE_MS) {
    // Judge after the poll phase has read what arrived while the loop was stalled (once: a loop
    // that is always this late must not put the bound off for ever).
    deferred = true;
    arm(1);
    return;
  }
  deferred = false;
  let next = Infinity;
  checking = true;
  try {
    for (const conn of watched) {
      const left = conn.holLeft();
      if (left !== null && left > 0) {
        if (left < next) next = left;
        continue;
      }
      watched.delete(conn);
      conn.watched = false;
      if (left !== null) conn.hedge();
    }
  } finally {
    checking = false;
    if (watched.size > 0) arm(next === Infinity ? 1 : next);
  }
}
