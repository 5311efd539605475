import t from 'tap';
import { IdleSweeper, type IdleMember } from '../../src/l4/idle.js';

function member(): IdleMember & { expired: number } {
  const m = {
    active: false,
    idleTicks: 0,
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

t.test('the interval survives the set emptying and refilling, and stops on the first tick with no members', async (t) => {
  const s = new IdleSweeper(800);
  const a = member();
  const b = member();
  t.notOk(s.armed, 'no members, no timer');
  s.add(a);
  t.ok(s.armed);
  s.delete(a); // connection churn: empty for a moment...
  t.ok(s.armed, 'not cleared when the last member leaves');
  s.add(b); // ...and refilled
  t.ok(s.armed);
  s.delete(b);
  s.sweep();
  t.notOk(s.armed, 'a tick that finds no members stops it');
  t.equal(a.expired + b.expired, 0, 'deleted members never expire');
  s.add(a);
  t.ok(s.armed, 'and the next member starts it again');
  s.close();
  t.notOk(s.armed);
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
