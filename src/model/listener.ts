// L4 listeners as configured (docs/l4.md): a TCP listener to one pool, a TLS passthrough listener
// whose ClientHello server name picks the pool, or a UDP listener to one pool. Plain data, posted
// to the L4 threads as is. Declared by SLUICE_TCP_LISTEN / SLUICE_UDP_LISTEN or the config file's
// `listeners:`.

export interface L4ListenerBase {
  /** "tcp 0.0.0.0:5432": unique; metric label, status page row, reload identity. */
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** Expect a PROXY v1/v2 header from a front balancer on every connection (TCP kinds only). */
  readonly acceptProxy: boolean;
  /** TCP: close a relay quiet for this long (0 = never). UDP: a session's idle expiry. */
  readonly idleTimeoutMs: number;
  /** Where it was declared: "SLUICE_TCP_LISTEN item 2", "listeners[0]" (for messages). */
  readonly origin: string;
}

export interface TcpListenerSpec extends L4ListenerBase {
  readonly kind: 'tcp';
  readonly pool: string;
}

export interface TlsPassthroughListenerSpec extends L4ListenerBase {
  readonly kind: 'tls-passthrough';
  /** Server name ("api.example.com" or "*.example.com") → pool. */
  readonly sni: Readonly<Record<string, string>>;
  /** Pool for no SNI or no match; null closes such connections. */
  readonly defaultPool: string | null;
}

export interface UdpListenerSpec extends L4ListenerBase {
  readonly kind: 'udp';
  readonly pool: string;
}

export type L4ListenerSpec = TcpListenerSpec | TlsPassthroughListenerSpec | UdpListenerSpec;

/** TCP relays: HAProxy's `timeout client` in tcp mode is often minutes; ours matches docs/l4.md. */
export const DEFAULT_L4_IDLE_MS = 600_000;
/** UDP sessions (docs/l4.md). */
export const DEFAULT_UDP_SESSION_MS = 60_000;

export function l4ListenerName(kind: L4ListenerSpec['kind'], host: string, port: number): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return `${kind === 'tls-passthrough' ? 'tls' : kind} ${h}:${port}`;
}

/** Every pool a listener may send to. */
export function listenerPools(l: L4ListenerSpec): string[] {
  if (l.kind !== 'tls-passthrough') return [l.pool];
  const out = new Set(Object.values(l.sni));
  if (l.defaultPool !== null) out.add(l.defaultPool);
  return [...out];
}
