// Connection state export/import for Socket Cloning (paper section 2.2, DESIGN.md 3-4).
//
// exportState() captures what another node needs to continue a connection: the numeric
// state (sequence numbers, windows and scales, MSS, congestion and RTT estimates) and the
// "socket seed", the last IPv4+TCP header received from the peer. encodeState() writes the
// numeric part as a fixed-size record (STATE_SIZE bytes, layout in docs/tcp.md) that becomes
// the SC message's socket-state field; decodeState() validates and reads it back.
//
// Imported state crosses a trust boundary (it arrives over the SC link): validateImport()
// refuses what cannot be a connection of this node (local side not a listening VIP:port,
// remote not a plausible unicast address, inconsistent numbers) and clamps what is merely
// out of range (windows, MSS, cwnd, ssthresh, RTT) to what this node would use itself.
// Errors are values (WireError), like decodeState's; importState() runs it too and throws.
//
// importState() creates an ESTABLISHED (or CLOSE-WAIT) socket on this node's stack that
// continues the same sequence space, with `initialBytes` handed to the application as if just
// received: they are a synthetic request, so rcv_nxt does not move and nothing is ACKed for
// them. Options turn the socket into a clone (window cap, discard of later data, silent drop
// once the response is acknowledged); TcpSocket.setShadow() is the original's side.

import type { TcpConnection } from "./connection.js";
import { STATE_FIELDS, blankSnapshot, type ConnectionSnapshot } from "./exported.js";
import type { TcpState } from "./types.js";
import { SEED_MAX, type ImportOptions, type LocalEndpoint, type TcpStack } from "./stack.js";
import { TcpSocket, type TcpSocketOptions } from "./socket.js";
import { copyBytes } from "./bytes.js";
import { implausibleRemote } from "../wire/addr.js";
import { initialWindowBytes, type TcpConfig } from "./config.js";
import { WireError, isWireError } from "../wire/error.js";
import { ipv4ToString, readIpv4 } from "../wire/addr.js";
import { TcpError } from "./errors.js";

export interface TcpExportedState extends ConnectionSnapshot {
  /** The last IPv4+TCP header received from the peer (a copy), if any. */
  seed: Uint8Array | undefined;
}

/** Size in bytes of the encoded numeric state. */
export const STATE_SIZE = 96;
export const STATE_VERSION = 1;

const STATE_CODES: Partial<Record<TcpState, number>> = { ESTABLISHED: 1, "CLOSE-WAIT": 2 };
/** Every bit a flag field may set in byte 2. */
let FLAG_MASK = 0;
for (const f of STATE_FIELDS) if (f.kind === "flag") FLAG_MASK |= f.bit;

/** Exports a connection's state. It must be ESTABLISHED or CLOSE-WAIT. */
export function exportState(target: TcpSocket | TcpConnection, now?: number): TcpExportedState {
  const conn = target instanceof TcpSocket ? target.conn : target;
  const t = now ?? (target instanceof TcpSocket ? target.stack.now() : conn.timers.lastActivity);
  if (STATE_CODES[conn.state] === undefined) {
    throw new TcpError(`cannot export a connection in ${conn.state}`, "ERR_TCP_STATE");
  }
  // Stored, not spread: the snapshot's shape has a seed slot already (blankSnapshot).
  const s = conn.snapshot(t) as TcpExportedState;
  s.seed = conn.seed === undefined ? undefined : copyBytes(conn.seed);
  return s;
}

function micros(ms: number): number {
  const v = Math.round(ms * 1000);
  return v < 0 ? 0 : v > 0xffffffff ? 0xffffffff : v;
}

/** Writes the numeric state (not the seed) as STATE_SIZE bytes at buf[off] (layout: STATE_FIELDS). */
export function encodeState(s: ConnectionSnapshot, buf = new Uint8Array(STATE_SIZE), off = 0): Uint8Array {
  const code = STATE_CODES[s.state];
  if (code === undefined) throw new RangeError(`cannot encode state ${s.state}`);
  if (off < 0 || off + STATE_SIZE > buf.length) throw new RangeError("encodeState: buffer too small");
  const v = new DataView(buf.buffer, buf.byteOffset + off, STATE_SIZE);
  // Reserved bytes (5 and 84..95: timestamp state, SACK) stay zero in version 1.
  buf.fill(0, off, off + STATE_SIZE);
  v.setUint8(0, STATE_VERSION);
  v.setUint8(1, code);
  let flags = 0;
  for (const f of STATE_FIELDS) {
    if (f.kind === "flag") {
      if (s[f.key]) flags |= f.bit;
      continue;
    }
    const x = s[f.key];
    if (f.kind === "u8") v.setUint8(f.off, x);
    else if (f.kind === "u16") v.setUint16(f.off, x);
    else if (f.kind === "u32") v.setUint32(f.off, Math.min(x, 0xffffffff));
    else v.setUint32(f.off, micros(x));
  }
  v.setUint8(2, flags);
  v.setUint32(12, s.tuple.localAddr);
  v.setUint32(16, s.tuple.remoteAddr);
  v.setUint16(20, s.tuple.localPort);
  v.setUint16(22, s.tuple.remotePort);
  return buf;
}

const MAX_WINDOW = 0xffff * 2 ** 14;

/** Reads and validates STATE_SIZE bytes at buf[off]. */
export function decodeState(buf: Uint8Array, off = 0): ConnectionSnapshot | WireError {
  if (off < 0 || off + STATE_SIZE > buf.length) return new WireError("truncated", "tcp state: short buffer");
  const v = new DataView(buf.buffer, buf.byteOffset + off, STATE_SIZE);
  if (v.getUint8(0) !== STATE_VERSION)
    return new WireError("bad-version", `tcp state: version ${v.getUint8(0)}`);
  const code = v.getUint8(1);
  const state: TcpState | undefined = code === 1 ? "ESTABLISHED" : code === 2 ? "CLOSE-WAIT" : undefined;
  if (state === undefined) return new WireError("bad-field", `tcp state: state code ${code}`);
  const flags = v.getUint8(2);
  if (flags & ~FLAG_MASK) return new WireError("bad-field", "tcp state: unknown flags");
  const localPort = v.getUint16(20);
  const remotePort = v.getUint16(22);
  const out = blankSnapshot();
  out.tuple = { localAddr: v.getUint32(12), localPort, remoteAddr: v.getUint32(16), remotePort };
  out.state = state;
  for (const f of STATE_FIELDS) {
    if (f.kind === "flag") out[f.key] = (flags & f.bit) !== 0;
    else if (f.kind === "u8") out[f.key] = v.getUint8(f.off);
    else if (f.kind === "u16") out[f.key] = v.getUint16(f.off);
    else if (f.kind === "u32") out[f.key] = v.getUint32(f.off);
    else out[f.key] = v.getUint32(f.off) / 1000;
  }
  // Every key was just set, from the table that defines the type.
  const s = out as ConnectionSnapshot;
  if (s.sndWscale > 14 || s.rcvWscale > 14) return new WireError("bad-field", "tcp state: window scale > 14");
  if (s.sndMss < 64 || s.advMss < 64 || s.rcvMss < 1)
    return new WireError("bad-field", "tcp state: MSS too small");
  if (localPort === 0 || remotePort === 0) return new WireError("bad-field", "tcp state: port 0");
  if (s.sndWnd > MAX_WINDOW || s.maxSndWnd > MAX_WINDOW || s.rcvWnd > MAX_WINDOW) {
    return new WireError("bad-field", "tcp state: window beyond 2^30");
  }
  if (((s.sndNxt - s.sndUna) | 0) < 0) return new WireError("bad-field", "tcp state: snd_nxt before snd_una");
  if (s.cwnd < s.sndMss) return new WireError("bad-field", "tcp state: cwnd below one MSS");
  // Version 1 negotiates no timestamps: their room must be empty, or the sender speaks a
  // state we would silently misread (no PAWS, no TSecr for the peer).
  if (v.getUint8(5) !== 0) return new WireError("bad-field", "tcp state: reserved byte 5 not zero");
  for (let i = 84; i < STATE_SIZE; i++) {
    if (v.getUint8(i) !== 0) return new WireError("bad-field", "tcp state: timestamp/SACK bytes not zero");
  }
  return s;
}

/**
 * Checks that a socket seed (IPv4+TCP header from the peer) matches the state's 4-tuple.
 * Returns an error description or undefined.
 */
export function checkSeed(s: ConnectionSnapshot, seed: Uint8Array): string | undefined {
  if (seed.length < 40 || seed[0] >>> 4 !== 4) return "seed is not an IPv4 header";
  if (seed.length > SEED_MAX) return `seed longer than ${SEED_MAX} bytes`;
  const ihl = (seed[0] & 15) * 4;
  if (seed.length < ihl + 20 || seed[9] !== 6) return "seed is not IPv4+TCP";
  const src = readIpv4(seed, 12);
  const dst = readIpv4(seed, 16);
  const sport = (seed[ihl] << 8) | seed[ihl + 1];
  const dport = (seed[ihl + 2] << 8) | seed[ihl + 3];
  const t = s.tuple;
  if (src !== t.remoteAddr || dst !== t.localAddr || sport !== t.remotePort || dport !== t.localPort) {
    return "seed 4-tuple differs from the state's";
  }
  return undefined;
}

/** The most an imported cwnd may be, in initial windows (RFC 6928 IW of the clamped MSS). */
export const MAX_IMPORTED_CWND_IW = 64;

/** Largest window a 16-bit field scaled by `shift` can express (<= 2^30 for shift 14). */
function maxWindow(shift: number): number {
  return 0xffff * 2 ** shift;
}

/** Largest value of each integer encoding. */
const MAX_OF = { u8: 0xff, u16: 0xffff, u32: 0xffffffff } as const;

/** What a node accepts as imported state. */
export interface ImportPolicy {
  /** The importing stack's config: MSS from mtu, IW from initialWindowSegments, RTO bounds,
   *  receive buffer. */
  cfg: TcpConfig;
  /** The local sides an imported connection may have: this node's VIP and listening port(s). */
  localEndpoints: readonly LocalEndpoint[];
  /** cwnd cap in initial windows (default MAX_IMPORTED_CWND_IW). */
  maxCwndIw?: number;
}

/** A state fit for import, and which fields had to be clamped for it. */
export interface ValidatedImport {
  state: ConnectionSnapshot & { seed?: Uint8Array };
  /** Names of clamped fields (empty when none), for counters and logs. */
  clamped: string[];
}

/**
 * Checks imported connection state (decoded from an SC message, or any object) before it
 * becomes a connection here. Refused (a WireError: "bad-address" for the endpoints,
 * "bad-field" for the rest): a state other than ESTABLISHED/CLOSE-WAIT; a local side that
 * is not one of `localEndpoints`; a remote that is not a plausible unicast peer (0/8,
 * 127/8, 224/4, 240/4, one of our addresses) or port 0; numbers that are not integers of
 * their range; our window scale above 14 or scales without the peer's window-scale offer;
 * an MSS below 64; snd_nxt before snd_una or more in flight than a window can hold; a cwnd
 * below one MSS; negative or non-finite RTT values; a seed for another 4-tuple or longer
 * than SEED_MAX. Clamped (listed in `clamped`): the peer's scale to 14 (RFC 7323 2.3), the
 * peer's window and largest window to what its scaled field can say (<= 2^30), our
 * advertised window to our scaled field and our receive buffer, sndMss and advMss to our
 * MTU - 40, rcvMss to advMss, cwnd to maxCwndIw initial windows, ssthresh to
 * [2 MSS, 2^31 - 1], srtt and rttvar to [0, rtoMax] (0 without a sample), rto to
 * [rtoMin, rtoMax]. Sequence numbers are taken as they are.
 */
export function validateImport(
  input: ConnectionSnapshot & { seed?: Uint8Array },
  policy: ImportPolicy,
): ValidatedImport | WireError {
  const bad = (detail: string): WireError => new WireError("bad-field", `import: ${detail}`);
  const cfg = policy.cfg;
  if (input.state !== "ESTABLISHED" && input.state !== "CLOSE-WAIT") return bad(`state ${input.state}`);
  // Every exported number must fit its encoding (an object, not only decoded bytes, may be
  // imported); milliseconds must be finite and not negative.
  for (const f of STATE_FIELDS) {
    if (f.kind === "flag") continue;
    const x = input[f.key];
    if (f.kind === "us") {
      if (!(Number.isFinite(x) && x >= 0)) return bad(`${f.key} ${x}`);
    } else if (!(Number.isInteger(x) && x >= 0 && x <= MAX_OF[f.kind])) {
      return bad(`${f.key} ${x} is not a ${f.kind === "u32" ? "uint32" : f.kind}`);
    }
  }
  const t = input.tuple;
  for (const [name, port] of [
    ["localPort", t.localPort],
    ["remotePort", t.remotePort],
  ] as const) {
    if (!(Number.isInteger(port) && port > 0 && port <= 0xffff)) return bad(`${name} ${port}`);
  }
  for (const [name, addr] of [
    ["localAddr", t.localAddr],
    ["remoteAddr", t.remoteAddr],
  ] as const) {
    if (!(Number.isInteger(addr) && addr >= 0 && addr <= 0xffffffff)) return bad(`${name} ${addr}`);
  }
  if (!policy.localEndpoints.some((e) => e.addr === t.localAddr && e.port === t.localPort)) {
    return new WireError(
      "bad-address",
      `import: local side ${ipv4ToString(t.localAddr)}:${t.localPort} is not a listening endpoint here`,
    );
  }
  const why = policy.localEndpoints.some((e) => e.addr === t.remoteAddr)
    ? "our own address"
    : implausibleRemote(t.remoteAddr);
  if (why !== undefined) {
    return new WireError("bad-address", `import: remote ${ipv4ToString(t.remoteAddr)} is ${why}`);
  }
  if (input.rcvWscale > 14) return bad(`our window scale ${input.rcvWscale} > 14`);
  if (!input.wscaleSeen && (input.sndWscale !== 0 || input.rcvWscale !== 0)) {
    return bad("window scale shifts without the peer's window-scale option");
  }
  if (input.sndMss < 64 || input.advMss < 64 || input.rcvMss < 1) return bad("MSS too small");
  const flight = (input.sndNxt - input.sndUna) | 0;
  if (flight < 0) return bad("snd_nxt before snd_una");
  if (flight > maxWindow(14)) return bad("more in flight than any window");
  if (input.cwnd < input.sndMss) return bad("cwnd below one MSS");
  if (input.seed !== undefined) {
    const seedError = checkSeed(input, input.seed);
    if (seedError !== undefined) return bad(seedError);
  }

  const out = { ...input, tuple: { ...t } };
  const clamped: string[] = [];
  const clamp = <K extends keyof typeof out>(field: K, value: (typeof out)[K]): void => {
    if (out[field] !== value) {
      out[field] = value;
      clamped.push(field);
    }
  };
  const between = (x: number, lo: number, hi: number): number => Math.min(Math.max(x, lo), hi);
  clamp("sndWscale", Math.min(out.sndWscale, 14));
  const peerMax = maxWindow(out.sndWscale);
  clamp("sndWnd", Math.min(out.sndWnd, peerMax));
  clamp("maxSndWnd", Math.min(out.maxSndWnd, peerMax));
  clamp("rcvWnd", Math.min(out.rcvWnd, maxWindow(out.rcvWscale), cfg.rcvBufSize));
  const localMss = cfg.mtu - 40;
  clamp("sndMss", Math.min(out.sndMss, localMss));
  clamp("advMss", Math.min(out.advMss, localMss));
  clamp("rcvMss", Math.min(out.rcvMss, out.advMss));
  const iw = initialWindowBytes(cfg.initialWindowSegments, out.sndMss);
  clamp("cwnd", between(out.cwnd, out.sndMss, (policy.maxCwndIw ?? MAX_IMPORTED_CWND_IW) * iw));
  clamp("ssthresh", between(out.ssthresh, 2 * out.sndMss, 0x7fffffff));
  clamp("srtt", out.hasRttSample ? Math.min(out.srtt, cfg.rtoMax) : 0);
  clamp("rttvar", out.hasRttSample ? Math.min(out.rttvar, cfg.rtoMax) : 0);
  clamp("rto", between(out.rto, cfg.rtoMin, cfg.rtoMax));
  return { state: out, clamped };
}

export interface ImportStateOptions extends ImportOptions, TcpSocketOptions {
  /** Allowed local sides (default: the stack's listening endpoints, stack.listeningEndpoints()). */
  localEndpoints?: readonly LocalEndpoint[];
}

/**
 * Creates a socket on `stack` continuing the exported connection. `initialBytes` are
 * delivered as the first 'data' (a synthetic request: not ACKed, rcv_nxt unchanged).
 * With `clone`, the socket is a Socket Cloning clone (see CloneBehaviour): its window never
 * opens beyond the imported edge, data arriving after the import is ACKed and discarded, and
 * end() makes it vanish silently (no FIN) once everything it sent is acknowledged.
 * The state goes through validateImport() with the stack's config; a refusal throws
 * (code ERR_TCP_IMPORT, the WireError as `cause`); call validateImport() first to get it as
 * a value.
 */
export function importState(
  stack: TcpStack,
  state: ConnectionSnapshot & { seed?: Uint8Array },
  initialBytes: Uint8Array = new Uint8Array(0),
  options: ImportStateOptions = {},
): TcpSocket {
  const checked = validateImport(state, {
    cfg: stack.cfg,
    localEndpoints: options.localEndpoints ?? stack.listeningEndpoints(),
  });
  if (isWireError(checked)) {
    throw new TcpError(`importState: ${checked.detail}`, "ERR_TCP_IMPORT", { cause: checked });
  }
  const snap = checked.state;
  const placeholder = { onConnectionEvents: (): void => undefined };
  const conn = stack.importConnection(snap, placeholder, options);
  if (snap.seed !== undefined) conn.seed = copyBytes(snap.seed);
  const sock = new TcpSocket(stack, conn, options);
  if (initialBytes.length > 0) sock.prependReceived(copyBytes(initialBytes));
  return sock;
}
