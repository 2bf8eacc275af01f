// The sender's SACK scoreboard (RFC 6675 section 2-4): which bytes above snd_una the peer
// has reported holding, as sorted, disjoint [start, end) ranges. The connection uses it to
// retransmit only the holes during recovery, to estimate the data in flight ("pipe"), and to
// skip SACKed data when it goes back after a timeout.

import { seqDiff, seqGt, seqLe, seqLt, seqMax, seqMin } from "./seq.js";

/** At most this many ranges are kept; blocks beyond them are ignored (bounded memory). */
const MAX_RANGES = 32;

export class SackScoreboard {
  /** Sorted, disjoint [start, end) ranges. */
  readonly ranges: Array<[number, number]> = [];
  /** Bytes covered by the ranges. */
  bytes = 0;

  get empty(): boolean {
    return this.ranges.length === 0;
  }

  clear(): void {
    this.ranges.length = 0;
    this.bytes = 0;
  }

  /**
   * Adds the peer's SACK blocks, keeping only what lies in (una, max]. Returns true if any
   * byte was not SACKed before (RFC 6675: such an ACK counts as a duplicate ACK).
   */
  update(blocks: ReadonlyArray<readonly [number, number]>, una: number, max: number): boolean {
    let grew = false;
    for (const [l0, r0] of blocks) {
      let l = l0 >>> 0;
      const r = r0 >>> 0;
      if (!seqLt(l, r) || seqLe(r, una) || seqGt(r, max)) continue; // invalid or D-SACK
      if (seqLt(l, una)) l = una;
      if (this.insert(l, r)) grew = true;
    }
    return grew;
  }

  private insert(l: number, r: number): boolean {
    const rs = this.ranges;
    let i = 0;
    while (i < rs.length && seqLt(rs[i][1], l)) i++;
    let j = i;
    while (j < rs.length && seqLe(rs[j][0], r)) j++;
    if (i === j) {
      if (rs.length >= MAX_RANGES) return false;
      rs.splice(i, 0, [l, r]);
      this.bytes += seqDiff(r, l);
      return true;
    }
    const start = seqMin(l, rs[i][0]);
    const end = seqMax(r, rs[j - 1][1]);
    let covered = 0;
    for (let k = i; k < j; k++) covered += seqDiff(rs[k][1], rs[k][0]);
    const added = seqDiff(end, start) - covered;
    rs.splice(i, j - i, [start, end]);
    this.bytes += added;
    return added > 0;
  }

  /** Forgets everything below `una` (the cumulative ACK moved). */
  advance(una: number): void {
    const rs = this.ranges;
    while (rs.length > 0 && seqLe(rs[0][1], una)) {
      this.bytes -= seqDiff(rs[0][1], rs[0][0]);
      rs.shift();
    }
    if (rs.length > 0 && seqLt(rs[0][0], una)) {
      this.bytes -= seqDiff(una, rs[0][0]);
      rs[0][0] = una;
    }
  }

  /** The range holding `seq`, or undefined. */
  rangeAt(seq: number): readonly [number, number] | undefined {
    for (const r of this.ranges) {
      if (seqLt(seq, r[0])) return undefined;
      if (seqLt(seq, r[1])) return r;
    }
    return undefined;
  }

  /** Start of the first range beginning after `seq`, or undefined. */
  nextStart(seq: number): number | undefined {
    for (const r of this.ranges) if (seqGt(r[0], seq)) return r[0];
    return undefined;
  }

  /** SACKed bytes inside [a, b). */
  sackedIn(a: number, b: number): number {
    let n = 0;
    for (const [l, r] of this.ranges) {
      const lo = seqMax(l, a);
      const hi = seqMin(r, b);
      if (seqLt(lo, hi)) n += seqDiff(hi, lo);
    }
    return n;
  }

  /**
   * RFC 6675 IsLost(): a byte is lost when more than `threshold` bytes above it are SACKed.
   * Returns the sequence number below which every un-SACKed byte is lost (`una` if none).
   */
  lostEnd(una: number, threshold: number): number {
    // Holes lie between ranges; every hole below range k has at least the bytes of ranges
    // k.. above it. So the boundary is the start of the highest range at which the SACKed
    // bytes counted from the top first exceed the threshold.
    let acc = 0;
    for (let k = this.ranges.length - 1; k >= 0; k--) {
      const [l, r] = this.ranges[k];
      acc += seqDiff(r, l);
      if (acc > threshold) return seqMax(l, una);
    }
    return una;
  }
}
