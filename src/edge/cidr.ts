// IP allow/deny lists: CIDR blocks, IPv4 and IPv6, compiled once into one set per prefix length
// (IPv4 as integers, IPv6 as 32 hex digits), so a lookup costs one masked set probe per distinct
// prefix length in the list (at most 33 + 129) however many blocks it has. An IPv4-mapped IPv6
// address (::ffff:1.2.3.4), in a list or from a client, is the IPv4 address.

/** An address as 4 (IPv4) or 16 (IPv6) bytes, or null when the text is not one. */
export function parseIp(text: string): Uint8Array | null {
  if (text.includes(':')) return parseV6(text);
  return parseV4(text);
}

function parseV4(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseV6(text: string): Uint8Array | null {
  let t = text;
  if (t.startsWith('[') && t.endsWith(']')) t = t.slice(1, -1);
  const zone = t.indexOf('%');
  if (zone >= 0) t = t.slice(0, zone);
  let tail: Uint8Array | null = null;
  const lastColon = t.lastIndexOf(':');
  if (t.slice(lastColon + 1).includes('.')) {
    tail = parseV4(t.slice(lastColon + 1));
    if (tail === null) return null;
    t = t.slice(0, lastColon + 1) + '0:0';
  }
  const halves = t.split('::');
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  if (head === null || rest === null) return null;
  const total = head.length + rest.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return null;
  const all = [...head, ...new Array<number>(8 - total).fill(0), ...rest];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = all[i]! >> 8;
    out[2 * i + 1] = all[i]! & 0xff;
  }
  if (tail !== null) out.set(tail, 12);
  return unmap(out);
}

/** ::ffff:a.b.c.d → a.b.c.d (4 bytes); anything else unchanged. */
function unmap(b: Uint8Array): Uint8Array {
  if (b.length !== 16 || b[10] !== 0xff || b[11] !== 0xff) return b;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return b;
  return b.slice(12);
}

export interface Cidr {
  readonly bytes: Uint8Array;
  readonly bits: number;
}

/** "10.0.0.0/8", "::1/128", "1.2.3.4" (= /32), "::ffff:10.0.0.0/104" (= 10.0.0.0/8); or an error text. */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const bytes = parseIp(addr.trim());
  if (bytes === null) return `${JSON.stringify(text)} is not an IPv4 or IPv6 address or CIDR block`;
  const wasMapped = bytes.length === 4 && addr.includes(':');
  const max = wasMapped ? 128 : bytes.length * 8;
  let bits = max;
  if (slash >= 0) {
    const b = text.slice(slash + 1).trim();
    if (!/^[0-9]{1,3}$/.test(b) || Number(b) > max) return `${JSON.stringify(text)}: prefix length must be 0-${max}`;
    bits = Number(b);
  }
  if (wasMapped) {
    if (bits < 96) return `${JSON.stringify(text)}: an IPv4-mapped block needs a prefix length of at least 96`;
    bits -= 96;
  }
  return { bytes, bits };
}

function v4(b: Uint8Array): number {
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

function v6Masked(b: Uint8Array, bits: number): string {
  let out = '';
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    const byte = keep === 0 ? 0 : b[i]! & ((0xff << (8 - keep)) & 0xff);
    out += byte < 16 ? '0' + byte.toString(16) : byte.toString(16);
  }
  return out;
}

function v4Mask(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

export class CidrSet {
  readonly size: number;
  /** [prefix length, set of masked addresses], longest prefixes first. */
  readonly #v4: [number, Set<number>][] = [];
  readonly #v6: [number, Set<string>][] = [];
  /** Parsed addresses of recent lookups: clients repeat, parsing is the costly part. */
  readonly #memo = new Map<string, boolean>();

  constructor(blocks: readonly Cidr[]) {
    this.size = blocks.length;
    const fours = new Map<number, Set<number>>();
    const sixes = new Map<number, Set<string>>();
    for (const { bytes, bits } of blocks) {
      if (bytes.length === 4) {
        let s = fours.get(bits);
        if (s === undefined) fours.set(bits, (s = new Set()));
        s.add((v4(bytes) & v4Mask(bits)) >>> 0);
      } else {
        let s = sixes.get(bits);
        if (s === undefined) sixes.set(bits, (s = new Set()));
        s.add(v6Masked(bytes, bits));
      }
    }
    this.#v4 = [...fours].sort((a, b) => b[0] - a[0]);
    this.#v6 = [...sixes].sort((a, b) => b[0] - a[0]);
  }

  /** Does any block hold `ip` (text as clientAddress or X-Forwarded-For gives it)? */
  has(ip: string): boolean {
    const memo = this.#memo.get(ip);
    if (memo !== undefined) return memo;
    const bytes = parseIp(ip);
    const hit = bytes !== null && this.hasBytes(bytes);
    // Bounded: a flood of distinct addresses clears it rather than growing it.
    if (this.#memo.size >= 4096) this.#memo.clear();
    this.#memo.set(ip, hit);
    return hit;
  }

  hasBytes(bytes: Uint8Array): boolean {
    if (bytes.length === 4) {
      const n = v4(bytes);
      for (const [bits, set] of this.#v4) if (set.has((n & v4Mask(bits)) >>> 0)) return true;
      return false;
    }
    for (const [bits, set] of this.#v6) if (set.has(v6Masked(bytes, bits))) return true;
    return false;
  }
}
