import v8 from 'node:v8';
import t from 'tap';
import { objectArray } from '../../src/l4/object-array.js';

t.test('an empty list whose elements are objects from the start (object-array.ts says why)', async (t) => {
  v8.setFlagsFromString('--allow-natives-syntax');
  const hasObjectElements = new Function('a', 'return %HasObjectElements(a)') as (a: unknown[]) => boolean;
  t.notOk(hasObjectElements([]), 'a literal [] has small-integer elements (what this avoids)');
  const a = objectArray<{ n: number }>();
  t.equal(a.length, 0);
  t.ok(hasObjectElements(a), 'objectArray() has object elements while empty');
  a.push({ n: 1 }, { n: 2 });
  t.same(a.map((o) => o.n), [1, 2]);
  t.not(objectArray(), objectArray(), 'a new array each time');
});
