// IP addresses as text, from the bytes a socket or a PROXY header gives: used for X-Forwarded-For
// (src/http/client-address.ts) and for PROXY v1 lines and decoded v2 headers (src/l4/proxy-protocol.ts).

/** RFC 5952 text for 16 bytes: lower case, no leading zeros, the longest run (≥ 2) of zero words as "::", the first on a tie. */
export function formatIPv6(b: Uint8Array): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[2 * i]! << 8) | b[2 * i + 1]!);
  let bestAt = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string => w.slice(from, to).map((x) => x.toString(16)).join(':');
  if (bestLen < 2) return hex(0, 8);
  return `${hex(0, bestAt)}::${hex(bestAt + bestLen, 8)}`;
}
