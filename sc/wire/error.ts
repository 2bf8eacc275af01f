// Typed results for malformed packets. Parsers return a WireError instead of throwing, so a
// caller on the packet path can count drops by kind without try/catch. WireError does not
// extend Error on purpose: capturing a stack trace per dropped packet would make a flood of
// garbage expensive to drop.

export type WireErrorKind =
  /** The buffer is shorter than a header or than a length field says. */
  | "truncated"
  /** IP version is not 4, or the GUE version bits are not 0 or 1. */
  | "bad-version"
  /** A header length field is below the minimum (IPv4 IHL < 5, TCP data offset < 5, ...). */
  | "bad-header-length"
  /** A total/datagram length field is inconsistent (e.g. IPv4 total length < header length). */
  | "bad-length"
  | "bad-checksum"
  /** An IPv4 fragment: we do not reassemble; callers count and drop these. */
  | "fragment"
  /** A TCP option with an impossible length, or a known option with the wrong length. */
  | "bad-option"
  /** Well-formed but not something we handle (other ICMP types, GUE inner protocol != IPv4, ...). */
  | "unsupported"
  /** A GUE control message (C bit set): we only carry data messages. */
  | "gue-control"
  /** A dotted-quad string that is not an IPv4 address. */
  | "bad-address"
  /** Emit: the destination buffer is too small. */
  | "no-space"
  /** Emit: a field of the representation is out of range for its wire format. */
  | "bad-field";

export class WireError {
  constructor(
    readonly kind: WireErrorKind,
    /** Human-readable detail for logs; never parse this, use `kind`. */
    readonly detail: string,
  ) {}

  toString(): string {
    return `${this.kind}: ${this.detail}`;
  }
}

/** Narrowing helper: `if (isWireError(r)) { drops[r.kind]++; return; }`. */
export function isWireError(value: unknown): value is WireError {
  return value instanceof WireError;
}

/** Every kind, e.g. to pre-create drop counters. */
export const WIRE_ERROR_KINDS: readonly WireErrorKind[] = [
  "truncated",
  "bad-version",
  "bad-header-length",
  "bad-length",
  "bad-checksum",
  "fragment",
  "bad-option",
  "unsupported",
  "gue-control",
  "bad-address",
  "no-space",
  "bad-field",
];
