// An empty array whose elements are objects from the start.
//
// V8 gives an array literal `[]` small-integer elements, and its first object element moves it to
// object elements (a new map). Optimised code that has only seen arrays of the second kind
// deoptimises on meeting one of the first: with the lists of idle.ts and tcp-proxy.ts created as
// `[]`, the first connection to a second listener (whose arrays were still empty since start-up)
// deoptimised the accept, connect and relay code (--trace-deopt: "wrong map" at their push). A
// literal holding null is created with object elements, and emptying it keeps them.
export function objectArray<T extends object>(): T[] {
  const a: (T | null)[] = [null];
  a.pop();
  return a as T[];
}
