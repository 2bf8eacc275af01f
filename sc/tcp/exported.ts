// The exported state of a synchronized connection (Socket Cloning, docs/tcp.md): ONE field
// table, composed of the connection's state groups (conn-state.ts), drives all four uses:
// what TcpConnection.snapshot() reads, what TcpConnection.restore() writes, and the byte
// layout encodeState()/decodeState() (state.ts) write and read. A field added here is
// exported, restored, encoded and decoded (and range-checked by validateImport) at once.
//
// The 96-byte record, version 1, big-endian: 0 version, 1 state code, 2 flags (the `flag`
// fields' bits), 3..11 and 24..83 the numeric fields at their offsets, 12..23 the 4-tuple,
// 5 and 84..95 reserved (zero). Microsecond fields (`us`) carry milliseconds on the
// connection side.

import type { TcpConfig } from "./config.js";
import { initialWindowBytes } from "./config.js";
import type {
  ConnOptions,
  CongestionState,
  ReceiveState,
  RttState,
  SendState,
  TimerState,
} from "./conn-state.js";
import { seqAdd, seqDiff } from "./seq.js";
import type { FourTuple, TcpState } from "./types.js";

/** The state groups the exported state is composed of (a TcpConnection is one). */
export interface StateGroups {
  readonly snd: SendState;
  readonly rcv: ReceiveState;
  readonly rtt: RttState;
  readonly cc: CongestionState;
  readonly timers: TimerState;
  readonly opts: ConnOptions;
}

/** How a numeric field is encoded: unsigned integer of 1, 2 or 4 bytes, or milliseconds as
 *  4-byte microseconds (rounded, saturating). */
type NumKind = "u8" | "u16" | "u32" | "us";

interface NumField<K extends string> {
  readonly key: K;
  readonly kind: NumKind;
  /** Byte offset in the record. */
  readonly off: number;
  /** The value to export (`now` and `cfg` for derived values). */
  read(g: StateGroups, now: number, cfg: TcpConfig): number;
  /** Restores it (in table order; undefined: restored by restoreDerived from several fields). */
  readonly write: ((g: StateGroups, v: number, cfg: TcpConfig) => void) | undefined;
}

interface FlagField<K extends string> {
  readonly key: K;
  readonly kind: "flag";
  /** Bit in the flags byte (offset 2). */
  readonly bit: number;
  read(g: StateGroups): boolean;
  write(g: StateGroups, v: boolean): void;
}

function num<K extends string>(
  key: K,
  kind: NumKind,
  off: number,
  read: (g: StateGroups, now: number, cfg: TcpConfig) => number,
  write?: (g: StateGroups, v: number, cfg: TcpConfig) => void,
): NumField<K> {
  return { key, kind, off, read, write };
}

function flag<K extends string>(
  key: K,
  bit: number,
  read: (g: StateGroups) => boolean,
  write: (g: StateGroups, v: boolean) => void,
): FlagField<K> {
  return { key, kind: "flag", bit, read, write };
}

/** Our RTO with backoff (RFC 6298 5.5), clamped to rtoMax. */
export function currentRto(rtt: RttState, cfg: TcpConfig): number {
  return Math.min(rtt.rto * 2 ** rtt.backoff, cfg.rtoMax);
}

/**
 * cwnd to export: restart-after-idle (RFC 5681 4.1) applied now, so that the importer starts
 * where this side would.
 */
function exportedCwnd(g: StateGroups, now: number, cfg: TcpConfig): number {
  const t = g.timers.lastDataSendTime;
  if (g.snd.max === g.snd.una && t >= 0 && now - t > currentRto(g.rtt, cfg)) {
    return Math.min(g.cc.cwnd, initialWindowBytes(cfg.initialWindowSegments, g.snd.mss));
  }
  return g.cc.cwnd;
}

/**
 * The exported fields, in record order. `sndNxt` is the highest sequence number sent + 1
 * (RFC 9293 SND.NXT, snd.max): the importer owns data from there on, so restoring it sets
 * snd.una/nxt/max and recover alike, and `sndUna` is exported but not restored.
 */
export const STATE_FIELDS = [
  flag(
    "wscaleSeen",
    1,
    (g) => g.opts.wscaleSeen,
    (g, v) => void (g.opts.wscaleSeen = v),
  ),
  flag(
    "hasRttSample",
    2,
    (g) => g.rtt.hasSample,
    (g, v) => void (g.rtt.hasSample = v),
  ),
  flag(
    "noDelay",
    4,
    (g) => g.opts.noDelay,
    (g, v) => void (g.opts.noDelay = v),
  ),
  flag(
    "sackOk",
    8,
    (g) => g.opts.sackOk,
    (g, v) => void (g.opts.sackOk = v),
  ),
  num(
    "sndWscale",
    "u8",
    3,
    (g) => g.snd.wscale,
    (g, v) => void (g.snd.wscale = v),
  ),
  num(
    "rcvWscale",
    "u8",
    4,
    (g) => g.rcv.wscale,
    (g, v) => void (g.rcv.wscale = v),
  ),
  num(
    "sndMss",
    "u16",
    6,
    (g) => g.snd.mss,
    (g, v) => void (g.snd.mss = v),
  ),
  num(
    "advMss",
    "u16",
    8,
    (g) => g.rcv.advMss,
    (g, v) => void (g.rcv.advMss = v),
  ),
  num(
    "rcvMss",
    "u16",
    10,
    (g) => g.rcv.mss,
    (g, v) => void (g.rcv.mss = v),
  ),
  num(
    "iss",
    "u32",
    24,
    (g) => g.snd.iss,
    (g, v) => void (g.snd.iss = v >>> 0),
  ),
  num(
    "irs",
    "u32",
    28,
    (g) => g.rcv.irs,
    (g, v) => void (g.rcv.irs = v >>> 0),
  ),
  num("sndUna", "u32", 32, (g) => g.snd.una),
  num(
    "sndNxt",
    "u32",
    36,
    (g) => g.snd.max,
    (g, v) => {
      const s = g.snd;
      s.una = s.nxt = s.max = g.cc.recover = v >>> 0;
    },
  ),
  num(
    "rcvNxt",
    "u32",
    40,
    (g) => g.rcv.nxt,
    (g, v) => void (g.rcv.nxt = g.rcv.lastAckSent = v >>> 0),
  ),
  num(
    "sndWnd",
    "u32",
    44,
    (g) => g.snd.wnd,
    (g, v) => void (g.snd.wnd = v),
  ),
  num(
    "sndWl1",
    "u32",
    48,
    (g) => g.snd.wl1,
    (g, v) => void (g.snd.wl1 = v >>> 0),
  ),
  num(
    "sndWl2",
    "u32",
    52,
    (g) => g.snd.wl2,
    (g, v) => void (g.snd.wl2 = v >>> 0),
  ),
  num("maxSndWnd", "u32", 56, (g) => g.snd.maxWnd),
  // The window we last advertised, in bytes from rcvNxt (its right edge must not shrink).
  num("rcvWnd", "u32", 60, (g) => Math.max(seqDiff(g.rcv.advEdge, g.rcv.nxt), 0)),
  num("cwnd", "u32", 64, exportedCwnd, (g, v) => void (g.cc.cwnd = v)),
  // 0x7fffffff: the initial "infinite" slow-start threshold.
  num(
    "ssthresh",
    "u32",
    68,
    (g) => g.cc.ssthresh,
    (g, v) => void (g.cc.ssthresh = v),
  ),
  num(
    "srtt",
    "us",
    72,
    (g) => g.rtt.srtt,
    (g, v) => void (g.rtt.srtt = v),
  ),
  num(
    "rttvar",
    "us",
    76,
    (g) => g.rtt.rttvar,
    (g, v) => void (g.rtt.rttvar = v),
  ),
  // RTO before backoff.
  num(
    "rto",
    "us",
    80,
    (g) => g.rtt.rto,
    (g, v, cfg) => void (g.rtt.rto = Math.min(Math.max(v, cfg.rtoMin), cfg.rtoMax)),
  ),
] as const;

type Fields = (typeof STATE_FIELDS)[number];
/** Name of an exported field. */
export type StateFieldKey = Fields["key"];

/** The numeric state of a synchronized connection: the 4-tuple, ESTABLISHED or CLOSE-WAIT
 *  (the peer's FIN received), and every field of STATE_FIELDS (booleans for flags). */
export type ConnectionSnapshot = { tuple: FourTuple; state: TcpState } & {
  [F in Fields as F["key"]]: F extends FlagField<string> ? boolean : number;
};

/**
 * Every key of a snapshot (and of an export, which adds the seed), in one fast-properties object. V8
 * keeps an object built key by key from `{}` in dictionary mode past a dozen keys, and copying
 * or spreading one of those costs 10-25 us (with the encoding, ~9% of the original node's busy time
 * per clone), and so does adding a key to a copy; a copy of this template keeps one shape and
 * costs about 0.1 us.
 */
const SNAPSHOT_TEMPLATE: Readonly<Record<string, unknown>> = Object.fromEntries([
  ["tuple", null],
  ["state", null],
  ...STATE_FIELDS.map((f) => [f.key, f.kind === "flag" ? false : 0]),
  // An export's socket seed (TcpExportedState); a decoded record has none (undefined).
  ["seed", undefined],
]);

/** A new snapshot-shaped object for readFields and decodeState to fill. */
export function blankSnapshot(): Record<string, unknown> {
  return { ...SNAPSHOT_TEMPLATE };
}

/** The exported state of a connection: its 4-tuple and state, and every field read now. */
export function readFields(
  g: StateGroups,
  now: number,
  cfg: TcpConfig,
  tuple: FourTuple,
  state: TcpState,
): ConnectionSnapshot {
  const out = blankSnapshot();
  out.tuple = tuple;
  out.state = state;
  for (const f of STATE_FIELDS) out[f.key] = f.kind === "flag" ? f.read(g) : f.read(g, now, cfg);
  // Every key of ConnectionSnapshot was just set, from the table that defines the type.
  return out as ConnectionSnapshot;
}

/** Restores every exported field into fresh groups, then what depends on several of them. */
export function writeFields(g: StateGroups, s: ConnectionSnapshot, cfg: TcpConfig): void {
  for (const f of STATE_FIELDS) {
    if (f.kind === "flag") f.write(g, s[f.key]);
    else if (f.write !== undefined) f.write(g, s[f.key], cfg);
  }
  // The largest window the peer offered covers what is in flight at the export.
  g.snd.maxWnd = Math.max(s.maxSndWnd, s.sndWnd, seqDiff(s.sndNxt, s.sndUna));
  g.rcv.advEdge = seqAdd(g.rcv.nxt, s.rcvWnd);
}
