// Claim rules of a route: a claim that must be present, or equal to (for a list claim: contain;
// for "scope", a space-separated list: contain) one of the given values.

import type { ClaimRule } from '../model/edge.js';

export function claimsHold(rules: readonly ClaimRule[], claims: Readonly<Record<string, unknown>>): boolean {
  for (const rule of rules) {
    const v = claims[rule.claim];
    if (v === undefined || v === null) return false;
    if (rule.values.length === 0) continue;
    let have: unknown[];
    if (Array.isArray(v)) have = v;
    else if (typeof v === 'string' && rule.claim === 'scope') have = v.split(' ');
    else have = [v];
    if (!have.some((x) => rule.values.includes(typeof x === 'string' ? x : String(x)))) return false;
  }
  return true;
}
