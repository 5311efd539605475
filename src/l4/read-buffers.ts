// The read buffers of backend sockets: one per backend connection, lent by a per-thread free list
// and taken back when the relay has closed both sockets.
//
// Why: without a buffer of its own, every read of a net.Socket gets a freshly allocated ArrayBuffer
// (64 KiB asked of malloc, shrunk to what arrived). At loopback speeds that is one allocation, page
// faults and a cold copy per read; profiled in docs/l4.md ("Relay speed"). A socket created with
// `onread: { buffer }` reads into the same memory every time, which stays in cache, and allocates
// nothing. The buffer may only be read into again once the write that carries its bytes onwards
// has completed; relay.ts guarantees that by pausing the socket while such a write is queued.
//
// The free list keeps at most `keep` buffers, so a burst of connections leaves no lasting RSS
// beyond keep × size; a connection holds its buffer for its whole life (like nginx `stream`'s
// per-session proxy_buffer_size), which is the price of reads that allocate nothing.

/** 64 KiB: libuv's own read size, so a read never takes less than Node's default path would. */
export const DEFAULT_READ_BUFFER_BYTES = 65_536;
/** 64 × 64 KiB = 4 MiB kept at most once connections have closed. */
const DEFAULT_KEEP = 64;

export class ReadBufferPool {
  readonly size: number;
  readonly #keep: number;
  readonly #free: Buffer[] = [];

  constructor(size: number = DEFAULT_READ_BUFFER_BYTES, keep: number = DEFAULT_KEEP) {
    if (!Number.isInteger(size) || size < 1024) throw new RangeError(`read buffer size ${size} is below 1024 bytes`);
    this.size = size;
    this.#keep = keep;
  }

  /** Buffers on the free list now (tests). */
  get free(): number {
    return this.#free.length;
  }

  take(): Buffer {
    // allocUnsafeSlow: a buffer of its own, never a slice of Node's shared 8 KiB pool.
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** Only once no read can land in `b` and no queued write refers to it (both sockets closed). */
  give(b: Buffer): void {
    if (this.#free.length < this.#keep && b.length === this.size) this.#free.push(b);
  }
}
