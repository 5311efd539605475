// A rate limit shared by several Sluice hosts through Redis. The bucket (the same GCRA as
// rate-table.ts, on Redis's own clock, in one Lua script so it is atomic) lives in Redis; each
// worker leases a few requests' worth at a time and spends them locally, so most requests never
// wait for a round trip. Leased requests unused after LEASE_TTL_MS are dropped: a lease can only
// make the limit admit less, never more.
//
// Redis unreachable (connection down, a command error or COMMAND_TIMEOUT_MS): the caller falls
// back, to the local shared-table limit (fail: open, the default) or a 503 (fail: closed). ioredis
// is used with its offline queue off, so a request never waits on a reconnect.

import { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** A lease not spent within this long is dropped (a quiet key should not sit on tokens). */
const LEASE_TTL_MS = 1000;
/** Longest a request waits for Redis before the fallback applies. */
const COMMAND_TIMEOUT_MS = 250;
/** Leased keys kept per limit per worker. */
const MAX_LEASES = 4096;
/** A key value longer than this is hashed into the Redis key (bounded key sizes). */
const MAX_KEY_TEXT = 200;

// KEYS[1]: bucket; ARGV: interval µs, depth µs, wanted. Returns { taken, retry-after ms }.
const GCRA_N = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local depth = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local ahead = tat - now
local avail = math.floor((depth - ahead) / interval + 1e-9)
if avail < 0 then avail = 0 end
local take = want
if avail < take then take = avail end
if take > 0 then
  tat = tat + take * interval
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
local retry = 0
if take < want then retry = math.ceil((ahead + take * interval + interval - depth) / 1000) end
return { take, retry }
`;

interface RedisWithGcra extends Redis {
  sluiceGcra(key: string, interval: number, depth: number, want: number): Promise<[number, number]>;
}

const clients = new Map<string, RedisWithGcra>();

/** One connection per Redis URL per worker, kept across reloads. */
function client(url: string, log: Logger): RedisWithGcra {
  let c = clients.get(url);
  if (c !== undefined) return c;
  c = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: COMMAND_TIMEOUT_MS,
    connectTimeout: 1000,
    retryStrategy: (times) => Math.min(times * 100, 2000),
    lazyConnect: false,
  }) as RedisWithGcra;
  c.defineCommand('sluiceGcra', { numberOfKeys: 1, lua: GCRA_N });
  let down = false;
  c.on('error', (err: Error) => {
    if (!down) log.warn({ redis: redact(url), err: err.message }, 'rate limit: Redis unreachable, limits using it fall back');
    down = true;
  });
  c.on('ready', () => {
    if (down) log.info({ redis: redact(url) }, 'rate limit: Redis reachable again');
    down = false;
  });
  clients.set(url, c);
  return c;
}

/** Drain or crash: drop every Redis connection of this worker so the thread can end. */
export function closeRedisClients(): void {
  for (const c of clients.values()) c.disconnect();
  clients.clear();
}

/** redis://user:secret@host → redis://user:***@host for logs. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

export type LeaseAnswer = { ok: true } | { ok: false; retryAfterMs: number } | { ok: null };

interface Lease {
  tokens: number;
  until: number;
  waiters: ((a: LeaseAnswer) => void)[];
  fetching: boolean;
  /** Redis said the bucket is empty until then: refuse locally without asking again. */
  blockedUntil: number;
}

/** Redis unreachable: the caller applies its fallback. */
const UNREACHABLE: LeaseAnswer = { ok: null };
const GRANTED: LeaseAnswer = { ok: true };

export class RedisLimit {
  readonly #redis: RedisWithGcra;
  readonly #prefix: string;
  /** GCRA constants in µs. */
  readonly #interval: number;
  readonly #depth: number;
  readonly #leaseSize: number;
  readonly #leases = new Map<string, Lease>();

  constructor(url: string, identity: string, count: number, periodMs: number, burst: number, log: Logger) {
    this.#redis = client(url, log);
    this.#prefix = 'sluice:rl:' + identity + ':';
    this.#interval = (periodMs / count) * 1000;
    this.#depth = this.#interval * burst;
    // A tenth of the burst, at most 100: small enough that leases parked in idle workers hold
    // back little of the bucket, large enough that a busy key asks Redis once per many requests.
    this.#leaseSize = Math.max(1, Math.min(100, Math.floor(burst / 10)));
  }

  /** Is Redis connected now? When not, the caller falls back at once instead of asking. */
  get up(): boolean {
    return this.#redis.status === 'ready';
  }

  /** GRANTED synchronously from a lease, else a promise of the answer. */
  take(value: string): LeaseAnswer | Promise<LeaseAnswer> {
    const now = Date.now();
    let lease = this.#leases.get(value);
    if (lease !== undefined && lease.tokens > 0 && now < lease.until && lease.waiters.length === 0) {
      lease.tokens--;
      return GRANTED;
    }
    if (lease !== undefined && now < lease.blockedUntil) return { ok: false, retryAfterMs: lease.blockedUntil - now };
    if (!this.up) return UNREACHABLE;
    if (lease === undefined) {
      if (this.#leases.size >= MAX_LEASES) this.#dropIdle(now);
      lease = { tokens: 0, until: 0, waiters: [], fetching: false, blockedUntil: 0 };
      this.#leases.set(value, lease);
    }
    const l = lease;
    return new Promise<LeaseAnswer>((resolve) => {
      l.waiters.push(resolve);
      if (!l.fetching) this.#fetch(value, l);
    });
  }

  #fetch(value: string, lease: Lease): void {
    lease.fetching = true;
    const want = Math.max(this.#leaseSize, lease.waiters.length);
    const key = this.#prefix + (value.length > MAX_KEY_TEXT ? value.slice(0, 64) + '#' + value.length : value);
    this.#redis.sluiceGcra(key, this.#interval, this.#depth, want).then(
      ([taken, retryMs]) => {
        lease.fetching = false;
        lease.tokens = taken;
        lease.until = Date.now() + LEASE_TTL_MS;
        while (lease.waiters.length > 0 && lease.tokens > 0) {
          lease.tokens--;
          lease.waiters.shift()!(GRANTED);
        }
        if (lease.waiters.length === 0) return;
        if (taken === want) return this.#fetch(value, lease);
        // The bucket is empty: everyone still waiting is refused.
        const refused: LeaseAnswer = { ok: false, retryAfterMs: Math.max(1, retryMs) };
        lease.blockedUntil = Date.now() + Math.max(1, retryMs);
        for (const w of lease.waiters.splice(0)) w(refused);
      },
      () => {
        lease.fetching = false;
        for (const w of lease.waiters.splice(0)) w(UNREACHABLE);
      },
    );
  }

  #dropIdle(now: number): void {
    for (const [k, l] of this.#leases) if (l.waiters.length === 0 && !l.fetching && (l.tokens === 0 || now >= l.until) && now >= l.blockedUntil) this.#leases.delete(k);
  }
}
