// A coarse shared idle timer for L4 connections and UDP sessions: one interval per sweeper, not one
// setTimeout per connection (undici's fast timers and HAProxy's timeout wheel make the same trade).
//
// A member marks itself `active` whenever bytes pass, which costs one store, no clock read. Every
// tick the sweeper clears that flag on members that had it, and counts a quiet tick for the others;
// a member quiet for `idleMs` worth of ticks is expired. So an idle timeout fires between idleMs
// and idleMs + one tick after the last byte.
//
// The interval is armed by start() (the listener is listening), not by the first member: add() is on
// every connection's path, inlined into the connect and relay code, and a branch there that starts
// a timer is one the optimised code may never have seen (a second listener's first connection, the
// set refilling after a quiet moment), so taking it deoptimised the connect path and V8 compiled it
// again (docs/l4.md, "Benchmark"). So the set emptying does not stop the interval, and churn (the
// set empties and refills all the time) never takes that branch. Only a long run of empty ticks
// (no member at all for a minute, or for idleMs when that is longer) parks it: an idle thread must
// not wake for nothing (measured: about 0.25 ms of CPU per wake-up of an idle L4 thread), and the
// next member arms it again; that branch runs after a quiet minute only, where a recompile costs
// nothing that matters (a minute, not one timeout: a listener can sit out a few seconds of other
// listeners' traffic, as the bench's rate listener does during its downloads). The interval is unref'd and close() stops it: it never keeps a thread or
// process alive on its own.
//
// Members sit in an array, each knowing its own index (`sweepIndex`), so add and delete are a store
// and a swap with the last member: no hashing. A Set cost a hash per new object (V8 creates an
// identity hash on a key's first use), a probe per add and delete, and a rehash every so often as
// deleted entries filled it, on every connection's path three times over (profiled: 3-4% of the L4
// thread's user time).
import { objectArray } from './object-array.js';

export interface IdleMember {
  /** Set by the member on every transfer; cleared by the sweeper. */
  active: boolean;
  /** Consecutive quiet ticks, owned by the sweeper. */
  idleTicks: number;
  /**
   * Where the sweeper holding this member keeps it; -1 (its initial value) when in none. Owned by
   * the sweeper: a member belongs to one sweeper at a time (a connection leaves the preface sweeper
   * before it joins the connect sweeper), and delete() checks the slot really holds the member.
   */
  sweepIndex: number;
  /** Called once when the member has been quiet for the timeout; the sweeper has already dropped it. */
  expire(): void;
}

/** Ticks per timeout: precision of 1/8 of the timeout (an idle 60 s closes within 60–67.5 s). */
const TICKS_PER_TIMEOUT = 8;
/** No faster than this, whatever the timeout: sweeping is O(members). */
const MIN_TICK_MS = 10;
/** Park the interval after this long with no member (at least one timeout; see the top of the file). */
export const PARK_AFTER_MS = 60_000;

export class IdleSweeper {
  readonly idleMs: number;
  readonly tickMs: number;
  readonly #limit: number;
  /** Empty ticks in a row that park the interval. */
  readonly #parkTicks: number;
  readonly #members = objectArray<IdleMember>();
  /** Members a sweep found due, expired after the walk (reused: a sweep allocates nothing). */
  readonly #due = objectArray<IdleMember>();
  #timer: NodeJS.Timeout | null = null;
  /** Between start() and close(): the interval runs, or is parked after an empty spell. */
  #started = false;
  /** Consecutive ticks with no member. */
  #emptyTicks = 0;

  /** `idleMs` 0 disables the sweeper: add() and delete() do nothing. `parkAfterMs`: tests. */
  constructor(idleMs: number, parkAfterMs: number = PARK_AFTER_MS) {
    this.idleMs = idleMs;
    this.tickMs = Math.max(MIN_TICK_MS, Math.ceil(idleMs / TICKS_PER_TIMEOUT));
    this.#limit = Math.max(1, Math.ceil(idleMs / this.tickMs));
    this.#parkTicks = Math.max(this.#limit, Math.ceil(parkAfterMs / this.tickMs));
  }

  get size(): number {
    return this.#members.length;
  }

  /** Whether the interval is running (tests). */
  get armed(): boolean {
    return this.#timer !== null;
  }

  /** Run the interval until close() (again after a close: a restarted owner). No-op when disabled. */
  start(): void {
    if (this.idleMs <= 0) return;
    this.#started = true;
    this.#arm();
  }

  #arm(): void {
    this.#emptyTicks = 0;
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => this.sweep(), this.tickMs);
    this.#timer.unref();
  }

  /**
   * Hot path: no timer work but re-arming a sweeper parked after a minute with no member (top of
   * the file). Members of an unstarted or closed sweeper only expire through sweep().
   */
  add(m: IdleMember): void {
    if (this.idleMs <= 0) return;
    m.active = false;
    m.idleTicks = 0;
    if (this.#has(m)) return;
    m.sweepIndex = this.#members.length;
    this.#members.push(m);
    if (this.#timer === null && this.#started) this.#arm(); // parked after an empty spell (top of file)
  }

  /** Whether `m` was a member (and is not any more). */
  delete(m: IdleMember): boolean {
    if (!this.#has(m)) return false;
    const members = this.#members;
    const last = members.pop()!;
    if (last !== m) {
      members[m.sweepIndex] = last;
      last.sweepIndex = m.sweepIndex;
    }
    m.sweepIndex = -1;
    return true;
  }

  #has(m: IdleMember): boolean {
    const i = m.sweepIndex;
    return i >= 0 && i < this.#members.length && this.#members[i] === m;
  }

  /** One tick (public so a test can drive the clock). */
  sweep(): void {
    const due = this.#due;
    const members = this.#members;
    for (let i = 0; i < members.length; i++) {
      const m = members[i]!;
      if (m.active) {
        m.active = false;
        m.idleTicks = 0;
      } else if (++m.idleTicks >= this.#limit) {
        due.push(m);
      }
    }
    // After the walk: an expiry may add a member (a connect timeout moves on to the next backend),
    // which the walk would otherwise visit and count a tick against at once.
    for (let i = 0; i < due.length; i++) {
      const m = due[i]!;
      if (this.delete(m)) m.expire(); // unless an earlier expiry already removed it
    }
    due.length = 0;
    if (members.length > 0) this.#emptyTicks = 0;
    else if (++this.#emptyTicks >= this.#parkTicks && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  /** Stop the timer and forget every member (without expiring them). */
  close(): void {
    this.#started = false;
    for (const m of this.#members) m.sweepIndex = -1;
    this.#members.length = 0;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
