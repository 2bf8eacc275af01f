// Types shared by the TCP stack's modules (connection, stack, isn, state, socket), so that
// none of them has to import another only for a type: the connection state machine, the
// stack and the ISN/cookie code used to form an import cycle through these.

import type { TcpConfig } from "./config.js";
import type { TcpRepr } from "../wire/tcp.js";

export type TcpState =
  | "CLOSED"
  | "SYN-SENT"
  | "SYN-RECEIVED"
  | "ESTABLISHED"
  | "FIN-WAIT-1"
  | "FIN-WAIT-2"
  | "CLOSE-WAIT"
  | "CLOSING"
  | "LAST-ACK"
  | "TIME-WAIT";

/** Why a connection ended (socket 'close' carries it). */
export type CloseReason =
  /** Both FINs exchanged and acknowledged. */
  | "closed"
  /** The peer sent an acceptable RST (ECONNRESET). */
  | "reset"
  /** Active open answered with RST (ECONNREFUSED). */
  | "refused"
  /** Retransmissions, SYN-ACKs, zero-window or keepalive probes went unanswered (ETIMEDOUT). */
  | "timeout"
  /** The peer kept its window closed for zeroWindowTimeout without taking our data
   *  (ETIMEDOUT; counted as zeroWindowAborts). */
  | "zero-window"
  /** Local abort: destroy() sent an RST. */
  | "aborted"
  /** Removed without any packet: dropSilently() or a clone whose response was acknowledged. */
  | "dropped";

// Event bits the socket layer consumes (conn.events), set by process/dispatch.
export const EV_ESTABLISHED = 1;
/** In-order bytes were appended to the receive queue. */
export const EV_DATA = 2;
/** The peer's FIN arrived (after all its data). */
export const EV_FIN = 4;
/** snd_una advanced (write callbacks, 'drain'). */
export const EV_ACKED = 8;
/** Our FIN was acknowledged. */
export const EV_FINISHED = 16;
/** The connection is over for the application (closeReason says why). It may linger in
 *  TIME-WAIT inside the stack. */
export const EV_CLOSED = 32;
/** The idle timeout set with setIdleTimeout elapsed without activity. */
export const EV_TIMEOUT = 64;

/** Per-stack services a connection needs: the config, the global challenge-ACK budget, and
 *  the drop counters. */
export interface ConnectionEnv {
  readonly cfg: TcpConfig;
  /** RFC 5961 section 7: the stack-wide cap on challenge ACKs (randomised per second,
   *  challenge-ack.ts). Returns false when this second's budget is spent. */
  takeChallengeAck(now: number): boolean;
  /** Counts a segment (or part of one) this connection refused, by reason. */
  countDrop(reason: string): void;
  /** Counts a segment that repeats sequence space already sent (retransmission or probe). */
  countRetransmit(): void;
  /** Counts a connection aborted because the peer's window stayed closed too long. */
  countZeroWindowAbort(): void;
}

export interface FourTuple {
  localAddr: number;
  localPort: number;
  remoteAddr: number;
  remotePort: number;
}

/** Options for a connection created by importState on a clone (Socket Cloning). */
export interface CloneBehaviour {
  /** Never advertise a right window edge beyond the one the original had advertised. */
  capWindow: boolean;
  /** Acknowledge but discard application data that arrives after the import. */
  discardNewData: boolean;
  /** After end(): send no FIN; once everything sent is acknowledged, vanish silently. */
  dropWhenAcked: boolean;
  /**
   * FIN delegation (the last response on a connection): end() sends FIN with the last data
   * segment, exactly as a plain close would, and the clone vanishes silently once that FIN is
   * acknowledged (no TIME-WAIT, never a RST). The original follows with delegateFin().
   * Takes precedence over dropWhenAcked's "no FIN".
   */
  finWithLastSegment: boolean;
  /**
   * The tail loss probe fires no earlier than this many ms after the last send (0: the
   * stack's own tlpMin). The original ends a clone with a message on the SC link instead of
   * relaying the client's last ACK (one packet fewer per clone): a probe sent before that
   * message can arrive would be a spurious retransmission into the client.
   */
  tailProbeMinMs: number;
}

export type SegmentSink = (seg: TcpRepr) => void;
