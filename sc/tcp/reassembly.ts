// Out-of-order reassembly for one connection's receive side. Data that arrived beyond
// rcv_nxt is kept as sorted, disjoint blocks of contiguous bytes; each block is a list of
// copied segment payloads, so a run of in-order segments after one hole stays one block. The
// caller bounds memory: it only inserts bytes inside the advertised window, and `maxBlocks`
// bounds the bookkeeping (a segment that would open one more hole is refused).

import { copyBytes } from "./bytes.js";
import { seqAdd, seqDiff, seqGt, seqLe, seqLt } from "./seq.js";

interface Block {
  start: number;
  end: number;
  chunks: Uint8Array[];
}

export class Reassembler {
  private blocks: Block[] = [];
  /** Bytes held. */
  bytes = 0;

  constructor(private readonly maxBlocks: number) {}

  get empty(): boolean {
    return this.blocks.length === 0;
  }

  get blockCount(): number {
    return this.blocks.length;
  }

  /** Highest sequence number held + 1, or undefined when empty. */
  get highest(): number | undefined {
    return this.blocks.length === 0 ? undefined : this.blocks[this.blocks.length - 1].end;
  }

  /**
   * Up to `max` SACK blocks (RFC 2018 section 4): first the block holding `recent` (the
   * segment that arrived last), then the others in sequence order.
   */
  sackBlocks(recent: number, max: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    const blocks = this.blocks;
    let first = -1;
    for (let i = 0; i < blocks.length; i++) {
      if (seqLe(blocks[i].start, recent) && seqLt(recent, blocks[i].end)) {
        first = i;
        out.push([blocks[i].start, blocks[i].end]);
        break;
      }
    }
    for (let i = 0; i < blocks.length && out.length < max; i++) {
      if (i !== first) out.push([blocks[i].start, blocks[i].end]);
    }
    return out;
  }

  /** [start, end) of every block, for tests and SACK-style diagnostics. */
  ranges(): Array<[number, number]> {
    return this.blocks.map((b) => [b.start, b.end]);
  }

  /**
   * Stores `data` (sequence `seq` onwards), copying the bytes not already held.
   * Returns false when the segment was refused because it would exceed `maxBlocks`.
   */
  insert(seq: number, data: Uint8Array): boolean {
    const len = data.length;
    if (len === 0) return true;
    const end = seqAdd(seq, len);
    const blocks = this.blocks;
    let i = 0;
    while (i < blocks.length && seqLt(blocks[i].end, seq)) i++;
    let j = i;
    while (j < blocks.length && seqLe(blocks[j].start, end)) j++;
    if (i === j) {
      if (blocks.length >= this.maxBlocks) return false;
      blocks.splice(i, 0, { start: seq, end, chunks: [copyBytes(data)] });
      this.bytes += len;
      return true;
    }
    const chunks: Uint8Array[] = [];
    let cursor = seqLt(seq, blocks[i].start) ? seq : blocks[i].start;
    const start = cursor;
    for (let k = i; k < j; k++) {
      const b = blocks[k];
      if (seqLt(cursor, b.start)) {
        const piece = copyBytes(data, seqDiff(cursor, seq), seqDiff(b.start, seq));
        chunks.push(piece);
        this.bytes += piece.length;
      }
      for (const c of b.chunks) chunks.push(c);
      cursor = b.end;
    }
    if (seqLt(cursor, end)) {
      const piece = copyBytes(data, seqDiff(cursor, seq));
      chunks.push(piece);
      this.bytes += piece.length;
      cursor = end;
    }
    blocks.splice(i, j - i, { start, end: cursor, chunks });
    return true;
  }

  /**
   * Removes and returns the bytes that start at `rcvNxt` (earlier bytes are discarded),
   * or undefined when the first block does not reach `rcvNxt`.
   */
  take(rcvNxt: number): Uint8Array[] | undefined {
    const b = this.blocks[0];
    if (b === undefined || seqGt(b.start, rcvNxt)) return undefined;
    this.blocks.shift();
    this.bytes -= seqDiff(b.end, b.start);
    if (seqLe(b.end, rcvNxt)) return this.take(rcvNxt);
    let skip = seqDiff(rcvNxt, b.start);
    const out: Uint8Array[] = [];
    for (const c of b.chunks) {
      if (skip >= c.length) {
        skip -= c.length;
        continue;
      }
      out.push(skip > 0 ? c.subarray(skip) : c);
      skip = 0;
    }
    return out;
  }

  clear(): void {
    this.blocks = [];
    this.bytes = 0;
  }
}
