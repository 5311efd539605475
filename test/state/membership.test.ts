// Membership slots: a backend that leaves keeps its slot until every worker has applied a
// membership without it and no request or connection holds it; only then is the slot zeroed and
// handed to the next backend that joins. A backend that comes back before that keeps its slot.

import t from 'tap';
import type { Upstream } from '../../src/model/upstream.js';
import { C, CAPACITY, H } from '../../src/state/layout.js';
import { Membership } from '../../src/state/membership.js';
import { SharedTable } from '../../src/state/table.js';

function up(port: number): Upstream {
  return { url: `http://127.0.0.1:${port}`, protocol: 'http:', host: '127.0.0.1', port, weight: 1 };
}

t.test('a left slot is reused only once applied everywhere and drained', async (t) => {
  const table = new SharedTable();
  const m = new Membership(table);
  const [a, b] = m.assign([up(1), up(2)]);
  t.same([a!.slot, b!.slot], [0, 1]);
  t.equal(table.get(C.SLOW_START_AT, 0), 0, 'no slow start for the first membership');
  table.add(C.REQUESTS, 1, 7);
  table.acquire(1); // a request in flight on b
  m.assign([up(1)]);
  const removedAt = table.header(H.GENERATION);
  t.equal(m.leaving, 1);
  t.same(m.reclaim(removedAt - 1), [], 'not while a worker may still pick it');
  t.same(m.reclaim(removedAt), [], 'not while a request holds it');
  table.release(1);
  table.add(C.OPEN_CONNS, 1, 1);
  t.same(m.reclaim(removedAt), [], 'not while a connection to it is open');
  table.add(C.OPEN_CONNS, 1, -1);
  const gen = table.get(C.SLOT_GEN, 1);
  t.same(m.reclaim(removedAt), [1], 'drained: freed');
  t.equal(m.leaving, 0);
  const [, c] = m.assign([up(1), up(3)]);
  t.equal(c!.slot, 1, 'the next backend reuses it');
  t.equal(table.get(C.REQUESTS, 1), 0, 'counters start from zero');
  t.equal(table.get(C.SLOT_GEN, 1), gen + 1, 'the slot generation moves on');
  t.not(table.get(C.SLOW_START_AT, 1), 0, 'a backend joining a running pool starts slowly');
  t.equal(table.header(H.SLOTS_USED), 2, 'the used range did not grow');
});

t.test('a backend that comes back while leaving keeps its slot', async (t) => {
  const table = new SharedTable();
  const m = new Membership(table);
  m.assign([up(1), up(2)]);
  m.assign([up(1)]);
  table.add(C.REQUESTS, 1, 5);
  const [, back] = m.assign([up(1), up(2)]);
  t.equal(back!.slot, 1);
  t.equal(table.get(C.REQUESTS, 1), 5, 'its counters carry on');
  t.equal(m.leaving, 0);
  t.same(m.reclaim(table.header(H.GENERATION)), []);
});

t.test('churn far past the table size never fills it', async (t) => {
  const table = new SharedTable();
  const m = new Membership(table);
  m.assign([up(1)]);
  for (let i = 0; i < CAPACITY * 3; i++) {
    m.assign([up(1), up(10_000 + i)]);
    m.reclaim(table.header(H.GENERATION));
  }
  t.ok(table.header(H.SLOTS_USED) <= 3, `slots used stays small (${table.header(H.SLOTS_USED)})`);
});
