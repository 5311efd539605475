import t from 'tap';
import { IdleSweeper, type IdleMember } from '../../src/l4/idle.js';

function member(): IdleMember & { expired: number } {
  const m = {
    active: false,
    idleTicks: 0,
    sweepIndex: -1,
    expired: 0,
    expire() {
      m.expired++;
    },
  };
  return m;
}

t.test('a member expires after idleMs worth of quiet ticks, once; activity restarts the count', async (t) => {
  const s = new IdleSweeper(800); // tick 100 ms, 8 ticks
  t.equal(s.tickMs, 100);
  const quiet = member();
  const busy = member();
  s.add(quiet);
  s.add(busy);
  for (let i = 0; i < 7; i++) {
    busy.active = true;
    s.sweep();
  }
  t.equal(quiet.expired, 0, 'seven quiet ticks are not yet the timeout');
  busy.active = true;
  s.sweep();
  t.equal(quiet.expired, 1, 'the eighth is');
  t.equal(s.size, 1);
  for (let i = 0; i < 20; i++) s.sweep();
  t.equal(quiet.expired, 1, 'never twice');
  t.equal(busy.expired, 1, 'the busy one expires 8 ticks after its last activity');
  t.equal(s.size, 0);
  s.close();
});

t.test('0 disables; delete stops tracking; ticks are never under 10 ms', async (t) => {
  const off = new IdleSweeper(0);
  const m = member();
  off.add(m);
  t.equal(off.size, 0);
  const s = new IdleSweeper(20);
  t.equal(s.tickMs, 10);
  s.add(m);
  s.delete(m);
  s.sweep();
  s.sweep();
  t.equal(m.expired, 0);
  s.close();
});

/** Timers that keep the process alive (an unref'd one is not listed). */
const refTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

t.test('the interval runs from start() to close(), through empty ticks, parks after a whole empty timeout, never holds the process', async (t) => {
  const s = new IdleSweeper(800, 0); // park after one timeout (default: a minute)
  const a = member();
  const refs = refTimers();
  s.add(a);
  t.notOk(s.armed, 'add() arms no sweeper that was never started');
  s.start();
  t.ok(s.armed, 'start() arms it');
  t.equal(refTimers(), refs, 'unref: it keeps nothing alive');
  s.delete(a);
  s.sweep();
  s.sweep();
  t.ok(s.armed, 'an empty tick does not stop it (connection churn empties and refills the set)');
  for (let i = 0; i < 5; i++) s.sweep();
  t.ok(s.armed, 'seven empty ticks: still armed');
  s.sweep();
  t.notOk(s.armed, 'a whole timeout (eight ticks) with no member parks it: an idle thread does not wake');
  s.add(a);
  t.ok(s.armed, 'the next member arms it again');
  s.delete(a);
  for (let i = 0; i < 7; i++) s.sweep();
  s.add(a);
  s.sweep();
  t.ok(s.armed, 'a member before the eighth empty tick restarts the count');
  s.delete(a);
  s.start();
  s.close();
  t.notOk(s.armed, 'close() stops it');
  s.add(a);
  t.notOk(s.armed, 'a closed sweeper is not re-armed by a member');
  s.delete(a);
  t.equal(a.expired, 0, 'deleted members never expire');
  s.start();
  t.ok(s.armed, 'a closed sweeper can be started again');
  s.close();
  const off = new IdleSweeper(0);
  off.start();
  t.notOk(off.armed, 'a disabled sweeper never arms');
});

t.test('a started sweeper expires quiet members on its own clock', async (t) => {
  const s = new IdleSweeper(40, 0); // tick 10 ms, park after one timeout
  const quiet = member();
  s.start();
  s.add(quiet);
  await new Promise((r) => setTimeout(r, 150));
  t.equal(quiet.expired, 1, 'expired by the interval, not by a test-driven sweep');
  t.notOk(s.armed, 'parked after four empty ticks (one timeout)');
  const next = member();
  s.add(next);
  t.ok(s.armed);
  await new Promise((r) => setTimeout(r, 150));
  t.equal(next.expired, 1, 'and the re-armed interval expires the next one');
  s.close();
});

t.test('by default a sweeper parks only after a minute with no member', async (t) => {
  const s = new IdleSweeper(5000); // tick 625 ms: 96 ticks make a minute
  s.start();
  for (let i = 0; i < 95; i++) s.sweep();
  t.ok(s.armed, 'a few seconds, even fifty-nine, without connections: still armed');
  s.sweep();
  t.notOk(s.armed, 'a minute: parked');
  s.close();
  const long = new IdleSweeper(600_000); // tick 75 s: parks after one timeout, 8 ticks
  long.start();
  for (let i = 0; i < 8; i++) long.sweep();
  t.notOk(long.armed);
  long.close();
});

t.test('a member added by an expiry (a connect retry) gets its full timeout', async (t) => {
  const s = new IdleSweeper(800); // 8 ticks
  const m = member();
  let retried = 0;
  m.expire = () => {
    m.expired++;
    if (retried++ === 0) s.add(m); // the next attempt joins again from inside the sweep
  };
  s.add(m);
  for (let i = 0; i < 8; i++) s.sweep();
  t.equal(m.expired, 1);
  t.equal(s.size, 1, 'the retry is a member');
  for (let i = 0; i < 7; i++) s.sweep();
  t.equal(m.expired, 1, 'seven ticks later it has not expired yet');
  s.sweep();
  t.equal(m.expired, 2, 'the eighth expires it');
  s.close();
});

t.test('members leave from anywhere in the list; a sweeper ignores a member it does not hold', async (t) => {
  const s = new IdleSweeper(800); // 8 ticks
  const other = new IdleSweeper(800);
  const ms = [member(), member(), member(), member()];
  for (const m of ms) s.add(m);
  const stranger = member();
  other.add(stranger);
  t.notOk(s.delete(stranger), "another sweeper's member is not this one's to delete");
  t.equal(other.size, 1);
  s.add(ms[1]!);
  t.equal(s.size, 4, 'adding a member again keeps one entry');
  t.ok(s.delete(ms[1]!), 'from the middle');
  t.notOk(s.delete(ms[1]!), 'only once');
  t.ok(s.delete(ms[3]!), 'the last');
  t.ok(s.delete(ms[0]!), 'the first');
  t.equal(s.size, 1);
  for (let i = 0; i < 8; i++) s.sweep();
  t.same(ms.map((m) => m.expired), [0, 0, 1, 0], 'only the one still held expires');
  t.equal(ms[2]!.sweepIndex, -1, 'an expired member is in no sweeper');
  for (let i = 0; i < 8; i++) other.sweep();
  t.equal(stranger.expired, 1, "and the other sweeper's member was never touched");
  s.add(ms[0]!);
  s.close();
  t.equal(ms[0]!.sweepIndex, -1, 'close() lets every member go');
  other.close();
});
