// Reads the server_name out of a TLS ClientHello as its bytes arrive, for TLS passthrough.
//
// Bytes are pushed in whatever pieces TCP delivers (one byte at a time is fine). The reader walks
// the TLS record layer (RFC 8446 §5.1: type, legacy version, 16-bit length, at most 2^14 bytes of
// plaintext), joins the record fragments into one handshake message (a ClientHello may span several
// records, §5.1 allows handshake messages to be split), and once the whole message is in, parses
// it (§4.1.2) down to the server_name extension (RFC 6066 §3). It never throws on input: anything
// that is not a well-formed ClientHello is reported as MALFORMED with a reason, and the message size
// is bounded so a peer cannot make it buffer more than `maxHandshakeBytes`.
//
// The reader copies only the handshake message body (the caller keeps the raw chunks it must relay
// untouched); record headers are parsed in place through a 5-byte scratch buffer.

/** Result of push(): more bytes are needed. */
export const HELLO_MORE = 0;
/** The ClientHello names a host: see `serverName`. */
export const HELLO_NAME = 1;
/** A well-formed ClientHello without a host_name (no server_name extension, or no host_name entry). */
export const HELLO_NONE = 2;
/** Not a well-formed ClientHello: see `error`. */
export const HELLO_MALFORMED = 3;
export type HelloStatus = typeof HELLO_MORE | typeof HELLO_NAME | typeof HELLO_NONE | typeof HELLO_MALFORMED;

/**
 * Default bound on the ClientHello message. Browsers' hellos with post-quantum key shares are under
 * 2 KiB and large session tickets add a few more; 16 KiB leaves room for all of that while keeping
 * a peeking connection's memory small.
 */
export const DEFAULT_MAX_HELLO_BYTES = 16_384;

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
/** RFC 8446 §5.1: a TLSPlaintext fragment is at most 2^14 bytes. */
const MAX_RECORD = 16_384;
/** legacy_version(2) + random(32) + session id length(1) + one suite(2+2) + one method(1+1). */
const MIN_HELLO = 41;
const EXT_SERVER_NAME = 0;
const NAME_TYPE_HOST = 0;

export class ClientHelloReader {
  /** The host name, lower-cased, once push() returned HELLO_NAME. */
  serverName = '';
  /** Why the input was rejected, once push() returned HELLO_MALFORMED. */
  error = '';
  /** Bytes of input the reader has looked at (record headers included). */
  consumed = 0;
  readonly #max: number;
  #status: HelloStatus = HELLO_MORE;
  readonly #header = new Uint8Array(5);
  #headerHave = 0;
  #recordLeft = 0;
  readonly #hsHead = new Uint8Array(4);
  #hsHeadHave = 0;
  #body: Uint8Array | null = null;
  #bodyHave = 0;

  constructor(maxHandshakeBytes = DEFAULT_MAX_HELLO_BYTES) {
    this.#max = maxHandshakeBytes;
  }

  get status(): HelloStatus {
    return this.#status;
  }

  /** Feed the next bytes of the stream. Once the status is not HELLO_MORE, further input is ignored. */
  push(chunk: Uint8Array): HelloStatus {
    if (this.#status !== HELLO_MORE) return this.#status;
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.#recordLeft === 0) {
        const take = Math.min(5 - this.#headerHave, n - i);
        for (let k = 0; k < take; k++) this.#header[this.#headerHave + k] = chunk[i + k]!;
        this.#headerHave += take;
        i += take;
        this.consumed += take;
        if (this.#headerHave < 5) break;
        this.#headerHave = 0;
        const h = this.#header;
        if (h[0] !== RECORD_HANDSHAKE) return this.#fail(`record type ${h[0]} is not a handshake`);
        if (h[1] !== 3 || h[2]! > 4) return this.#fail(`record version ${h[1]}.${h[2]} is not TLS`);
        const length = (h[3]! << 8) | h[4]!;
        if (length === 0) return this.#fail('empty handshake record');
        if (length > MAX_RECORD) return this.#fail(`record of ${length} bytes is over 2^14`);
        this.#recordLeft = length;
        continue;
      }
      const take = Math.min(this.#recordLeft, n - i);
      this.#recordLeft -= take;
      this.consumed += take;
      const status = this.#handshake(chunk, i, i + take);
      i += take;
      if (status !== HELLO_MORE) return status;
    }
    return HELLO_MORE;
  }

  /** Handshake-layer bytes chunk[from, to). */
  #handshake(chunk: Uint8Array, from: number, to: number): HelloStatus {
    let i = from;
    if (this.#body === null) {
      while (this.#hsHeadHave < 4 && i < to) this.#hsHead[this.#hsHeadHave++] = chunk[i++]!;
      if (this.#hsHeadHave < 4) return HELLO_MORE;
      const h = this.#hsHead;
      if (h[0] !== HANDSHAKE_CLIENT_HELLO) return this.#fail(`handshake type ${h[0]} is not a ClientHello`);
      const length = (h[1]! << 16) | (h[2]! << 8) | h[3]!;
      if (length > this.#max) return this.#fail(`ClientHello of ${length} bytes is over the ${this.#max}-byte bound`);
      if (length < MIN_HELLO) return this.#fail(`ClientHello of ${length} bytes is too short`);
      this.#body = new Uint8Array(length);
    }
    const body = this.#body;
    const take = Math.min(body.length - this.#bodyHave, to - i);
    body.set(chunk.subarray(i, i + take), this.#bodyHave);
    this.#bodyHave += take;
    if (this.#bodyHave < body.length) return HELLO_MORE;
    this.#body = null; // parsed once; nothing more is kept
    return this.#parse(body);
  }

  /** RFC 8446 §4.1.2 ClientHello body (also TLS 1.0–1.2's, which has the same shape). */
  #parse(b: Uint8Array): HelloStatus {
    const end = b.length;
    if (b[0] !== 3) return this.#fail('ClientHello legacy_version is not TLS');
    let p = 34; // legacy_version + random
    const sid = b[p++]!;
    if (sid > 32) return this.#fail('session id over 32 bytes');
    p += sid;
    if (p + 2 > end) return this.#fail('truncated before cipher_suites');
    const suites = (b[p]! << 8) | b[p + 1]!;
    p += 2;
    if (suites < 2 || (suites & 1) !== 0 || p + suites > end) return this.#fail('bad cipher_suites length');
    p += suites;
    if (p + 1 > end) return this.#fail('truncated before compression_methods');
    const methods = b[p++]!;
    if (methods < 1 || p + methods > end) return this.#fail('bad compression_methods length');
    p += methods;
    if (p === end) return (this.#status = HELLO_NONE); // no extensions at all (allowed before TLS 1.3)
    if (p + 2 > end) return this.#fail('truncated extensions length');
    const extLength = (b[p]! << 8) | b[p + 1]!;
    p += 2;
    if (p + extLength !== end) return this.#fail('extensions length does not match the message');
    let found = false;
    while (p < end) {
      if (p + 4 > end) return this.#fail('truncated extension header');
      const type = (b[p]! << 8) | b[p + 1]!;
      const length = (b[p + 2]! << 8) | b[p + 3]!;
      p += 4;
      if (p + length > end) return this.#fail('extension overruns the message');
      if (type === EXT_SERVER_NAME) {
        if (found) return this.#fail('two server_name extensions');
        found = true;
        const status = this.#serverName(b, p, p + length);
        if (status === HELLO_MALFORMED) return status;
      }
      p += length;
    }
    return (this.#status = this.serverName === '' ? HELLO_NONE : HELLO_NAME);
  }

  /** RFC 6066 §3 ServerNameList in b[from, to): the first host_name entry wins. */
  #serverName(b: Uint8Array, from: number, to: number): HelloStatus {
    if (to - from < 2) return this.#fail('server_name extension too short');
    const listLength = (b[from]! << 8) | b[from + 1]!;
    if (from + 2 + listLength !== to || listLength === 0) return this.#fail('server_name list length does not match');
    let q = from + 2;
    while (q < to) {
      if (q + 3 > to) return this.#fail('truncated server_name entry');
      const type = b[q]!;
      const length = (b[q + 1]! << 8) | b[q + 2]!;
      q += 3;
      if (q + length > to) return this.#fail('server_name entry overruns the list');
      if (type === NAME_TYPE_HOST && this.serverName === '') {
        if (length === 0 || length > 255) return this.#fail('host_name length out of range');
        let name = '';
        for (let k = q; k < q + length; k++) {
          let c = b[k]!;
          // A DNS host name in ASCII (IDNs travel as A-labels): no controls, spaces or 8-bit bytes.
          if (c <= 0x20 || c >= 0x7f) return this.#fail('host_name has a byte that is not printable ASCII');
          if (c >= 0x41 && c <= 0x5a) c += 0x20;
          name += String.fromCharCode(c);
        }
        this.serverName = name;
      }
      q += length;
    }
    return HELLO_MORE; // not final: the caller finishes the extension walk
  }

  #fail(reason: string): HelloStatus {
    this.error = reason;
    this.#body = null;
    return (this.#status = HELLO_MALFORMED);
  }
}
