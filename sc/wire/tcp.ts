// TCP segment representation (RFC 9293 section 3.1). This file is the contract between
// sc/wire (parse/emit) and sc/tcp (the state machine): sc/tcp only sees TcpRepr values.

/** Flag bits as they sit in byte 13 of the TCP header. */
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

export interface TcpTimestamp {
  tsval: number; // uint32
  tsecr: number; // uint32
}

/** Options the stack understands; unknown options are skipped by the parser. */
export interface TcpOptions {
  mss?: number;
  /** Window scale shift count as sent (0..14; larger values are clamped to 14 per RFC 7323). */
  wscale?: number;
  sackPermitted?: boolean;
  /** SACK blocks as [left, right) uint32 sequence pairs, at most 4. */
  sack?: Array<[number, number]>;
  timestamp?: TcpTimestamp;
}

export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  /** uint32 */
  seq: number;
  /** uint32; meaningful only when TCP_ACK is set. */
  ack: number;
  /** Bitmask of TCP_* flags. */
  flags: number;
  /** The raw 16-bit window field (not scaled). */
  window: number;
  urgent: number;
  options: TcpOptions;
  /** On parse: a view into the packet buffer (no copy). */
  payload: Uint8Array;
}
