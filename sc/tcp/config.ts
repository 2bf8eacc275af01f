// Tunables of one TCP stack. Every time is in milliseconds; every size in bytes.

export interface TcpConfig {
  /** Device MTU; our advertised MSS is mtu - 40 (IPv4 + TCP headers without options). */
  mtu: number;
  /** Receive buffer per connection: the most unread plus out-of-order data we hold. The
   *  window scale we offer is the smallest that lets the window cover it. */
  rcvBufSize: number;
  /** Most out-of-order ranges kept per connection (each is one copied segment or a merge of
   *  several); segments that would need more are dropped and counted. */
  maxOooRanges: number;
  /** Send-queue size above which socket.write() returns false (unsent plus unacked bytes). */
  sndBufSize: number;
  /** Initial congestion window in segments (RFC 6928: 10). */
  initialWindowSegments: number;
  /** RFC 6298 retransmission timeout bounds and initial value. RFC 6298 recommends a 1 s
   *  minimum; like Linux we default to 200 ms, which is what LAN peers expect. */
  rtoMin: number;
  rtoMax: number;
  rtoInitial: number;
  /** Clock granularity G of RFC 6298 (our clock is milliseconds). */
  clockGranularity: number;
  /** Give-up bound: retransmissions of the same data (or unanswered zero-window probes)
   *  before the connection is aborted with ETIMEDOUT. */
  maxRetransmits: number;
  /** Longest time the peer may keep its window closed on data we have to send (persist
   *  state) without acknowledging any data sent while it was open: then the connection is
   *  aborted with RST (closeReason "zero-window", counter zeroWindowAborts). Answered
   *  probes do not extend it. RFC 9293's "user timeout" for the persist state; Linux has no
   *  such bound unless TCP_USER_TIMEOUT is set, and a client that never reads would
   *  otherwise hold the connection and its send buffer forever. */
  zeroWindowTimeout: number;
  /** SYN-ACK retransmissions before a half-open connection is dropped. */
  synAckRetries: number;
  /** SYN retransmissions for an active open. */
  synRetries: number;
  /** Delayed ACK timer (RFC 1122 requires <= 500 ms, RFC 5681 <= 500 ms, we use <= 200 ms). */
  delayedAck: number;
  /** TIME-WAIT duration (2*MSL in RFC 9293; configurable and short by default). */
  timeWait: number;
  /** FIN-WAIT-2 timeout once the application has closed both directions (Linux tcp_fin_timeout). */
  finWait2Timeout: number;
  /** Minimum interval between ACKs sent in reply to unacceptable segments without data, and
   *  between RFC 5961 challenge ACKs, per connection (Linux: tcp_invalid_ratelimit). The
   *  main bound on challenge ACKs. */
  challengeAckInterval: number;
  /** Stack-wide cap on those ACKs per second (RFC 5961 7): each second's budget is drawn at
   *  random from [n/2, 3n/2), so a count of them tells an off-path attacker nothing
   *  (CVE-2016-5696; challenge-ack.ts). Infinity: per-connection limit only. */
  challengeAckPerSecond: number;
  /** Keepalive: idle time before the first probe, interval, probes before abort. */
  keepAliveIdle: number;
  keepAliveInterval: number;
  keepAliveProbes: number;
  /** Half-open (SYN-RECEIVED) connections per listener before SYN cookies are used. */
  synBacklog: number;
  /** Connections of all kinds per stack; SYNs beyond it are answered with cookies. */
  maxConnections: number;
  /** TIME-WAIT entries per stack; beyond it a closing connection skips TIME-WAIT. */
  maxTimeWait: number;
  /** Nagle (RFC 896) off by default, as node's http server sets it; setNoDelay(false) on a
   *  socket turns it on. */
  noDelay: boolean;
  /** node:net allowHalfOpen: when false (default) a received FIN ends our side too. */
  allowHalfOpen: boolean;
  /** Offer SACK-permitted (RFC 2018). We send SACK blocks for out-of-order data so the peer
   *  recovers several losses per round trip; SACK blocks we receive are not used (our
   *  sender recovers with NewReno). */
  sack: boolean;
  /** Largest IPv4 packet for GSO output (a TUN with a vnet header cuts it into MSS-sized
   *  segments; TSO-style). 0 = off: every packet is at most one MSS. */
  gsoMaxBytes: number;
  /** Tail loss probe (RFC 8985 section 7): when ACKs stop while data is in flight, probe
   *  after max(2 * SRTT, tlpMin) instead of waiting for the RTO. */
  tailLossProbe: boolean;
  tlpMin: number;
}

export const DEFAULT_TCP_CONFIG: Readonly<TcpConfig> = Object.freeze({
  mtu: 1500,
  rcvBufSize: 1 << 20,
  maxOooRanges: 64,
  sndBufSize: 1 << 20,
  initialWindowSegments: 10,
  rtoMin: 200,
  rtoMax: 60_000,
  rtoInitial: 1000,
  clockGranularity: 1,
  maxRetransmits: 12,
  zeroWindowTimeout: 60_000,
  synAckRetries: 5,
  synRetries: 6,
  delayedAck: 40,
  timeWait: 1000,
  finWait2Timeout: 60_000,
  challengeAckInterval: 200,
  challengeAckPerSecond: 1000,
  keepAliveIdle: 7_200_000,
  keepAliveInterval: 75_000,
  keepAliveProbes: 9,
  synBacklog: 1024,
  maxConnections: 100_000,
  maxTimeWait: 16_384,
  noDelay: true,
  allowHalfOpen: false,
  sack: true,
  gsoMaxBytes: 0,
  tailLossProbe: true,
  tlpMin: 10,
});

export function makeConfig(overrides: Partial<TcpConfig> = {}): TcpConfig {
  const cfg = { ...DEFAULT_TCP_CONFIG, ...overrides };
  if (!(cfg.mtu >= 88 && cfg.mtu <= 65535)) throw new RangeError(`mtu out of range: ${cfg.mtu}`);
  if (!(cfg.rcvBufSize >= 1 && cfg.rcvBufSize <= 0x3fffffff)) throw new RangeError("rcvBufSize out of range");
  if (!(cfg.rtoMin > 0 && cfg.rtoMin <= cfg.rtoInitial && cfg.rtoInitial <= cfg.rtoMax))
    throw new RangeError("need 0 < rtoMin <= rtoInitial <= rtoMax");
  if (!(cfg.zeroWindowTimeout > 0 && Number.isFinite(cfg.zeroWindowTimeout)))
    throw new RangeError("zeroWindowTimeout must be a positive number of milliseconds");
  return cfg;
}

/** The window scale shift (RFC 7323) that lets a 16-bit window field cover `bufSize`. */
export function windowScaleFor(bufSize: number): number {
  let shift = 0;
  while (shift < 14 && bufSize > 0xffff * 2 ** shift) shift++;
  return shift;
}

/** The initial congestion window in bytes (RFC 6928: min(IW * MSS, max(2 * MSS, 14600)) for
 *  IW = 10, generalised to `segments`). */
export function initialWindowBytes(segments: number, mss: number): number {
  return Math.min(segments * mss, Math.max(2 * mss, segments * 1460));
}
