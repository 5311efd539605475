// Where a byte counter starts (relays, listeners, pools): -0, not 0.
//
// -0 is not a small integer, so V8 gives a field initialised with it a double representation from
// the first store. A field that starts as a small integer changes to a double once the count passes
// 2^31 (2 GiB through a listener), and that change of the object's shape deoptimises every
// optimised function that depends on it: the accept, connect and relay paths, which V8 then
// compiles again (seen with --trace-deopt after the bench's downloads; docs/l4.md, "Benchmark").
// -0 + n is n, and -0 prints as 0 (String, JSON, template literals).
export const BYTES_ZERO = -0;
