// One response sealed as a run of records of a fixed size: the layout both ends of a TLS clone
// compute on their own. The clone seals the response's bytes (head and body as one stream) in
// records of exactly `fragment` bytes each, the last one shorter, optionally followed by
// close_notify; so the original knows, from the response's length alone, how many bytes go on
// the wire (where the client's acknowledgement ends the clone), how many records (its next
// sequence number) and where each record starts (a range resume re-seals from a record
// boundary). AEAD sealing is deterministic for one key, nonce and plaintext, so records sealed
// again by the original are byte-identical to the clone's. Pure: no I/O.
import {
  ALERTS,
  ContentType,
  direction,
  MAX_FRAGMENT,
  RECORD_HEADER_LEN,
  sealRecord,
  wipeDirection,
  type Direction,
} from "./record.js";
import type { WriteState } from "./session.js";

/** Every TLS 1.3 suite here has a 16-byte tag. */
const TAG_LENGTH = 16;
/** Bytes a record adds to its content: header, inner content type, tag (no padding). */
export const RECORD_OVERHEAD = RECORD_HEADER_LEN + 1 + TAG_LENGTH;
/** A close_notify record on the wire: header, level + description, inner type, tag. */
export const CLOSE_NOTIFY_LENGTH = RECORD_HEADER_LEN + 2 + 1 + TAG_LENGTH;

/** How a response of `length` bytes is laid out in records. */
export interface StreamLayout {
  /** Content bytes per record (the last record holds the rest). */
  readonly fragment: number;
  /** close_notify follows the last record (the last response on the connection). */
  readonly closeNotify: boolean;
}

/**
 * Content bytes per record so that a whole record fills whole TCP segments of `mss` bytes (the
 * largest such record up to 2^14 bytes of content): a loss then stalls one record, and no
 * segment carries the end of one record and the start of the next.
 */
export function fragmentForMss(mss: number): number {
  const segments = Math.floor((MAX_FRAGMENT + RECORD_OVERHEAD) / mss);
  return segments >= 1 && mss > RECORD_OVERHEAD ? segments * mss - RECORD_OVERHEAD : MAX_FRAGMENT;
}

/** Records a response of `length` bytes takes (close_notify not counted). */
export function recordCount(length: number, fragment: number): number {
  return Math.ceil(length / fragment);
}

/** Bytes on the wire for a response of `length` bytes in this layout. */
export function sealedLength(length: number, layout: StreamLayout): number {
  return (
    length +
    recordCount(length, layout.fragment) * RECORD_OVERHEAD +
    (layout.closeNotify ? CLOSE_NOTIFY_LENGTH : 0)
  );
}

/** Records (close_notify included) the response advances the write sequence number by. */
export function sealedRecords(length: number, layout: StreamLayout): number {
  return recordCount(length, layout.fragment) + (layout.closeNotify ? 1 : 0);
}

/**
 * Where a resume continues when `wireOffset` bytes of the sealed stream reached the client: the
 * record to seal again (its index, so its sequence number is the start's + index), the content
 * offset it starts at, and how many of its bytes the client already has.
 */
export function resumeInStream(
  wireOffset: number,
  length: number,
  fragment: number,
): { record: number; contentFrom: number; skip: number } {
  const records = recordCount(length, fragment);
  const record = Math.min(Math.floor(wireOffset / (fragment + RECORD_OVERHEAD)), records);
  return {
    record,
    contentFrom: Math.min(record * fragment, length),
    skip: wireOffset - record * (fragment + RECORD_OVERHEAD),
  };
}

/**
 * Seals one response in its layout: push() the bytes in any pieces, finish() once. Nothing
 * else may be sealed under this write state meanwhile. The secret is wiped by finish() and
 * wipe().
 */
export class StreamSealer {
  private readonly dir: Direction;
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private done = false;

  constructor(
    state: WriteState,
    private readonly layout: StreamLayout,
  ) {
    if (!(Number.isInteger(layout.fragment) && layout.fragment >= 1 && layout.fragment <= MAX_FRAGMENT))
      throw new RangeError(`fragment must be 1..${MAX_FRAGMENT}`);
    this.dir = direction(state.suite, state.secret, state.seq);
  }

  /** Sequence number of the next record. */
  get seq(): number {
    return this.dir.seq;
  }

  /**
   * Would a response of `length` bytes stay under the suite's record limit from this state? (A
   * clone sends no KeyUpdate: the original would not know the new secret.)
   */
  static fits(state: WriteState, length: number, layout: StreamLayout): boolean {
    return state.seq + sealedRecords(length, layout) < state.suite.recordLimit;
  }

  /** Seals every whole record these bytes complete; the rest waits for more or finish(). */
  push(data: Uint8Array): Buffer {
    if (this.done) throw new Error("StreamSealer: push after finish");
    const f = this.layout.fragment;
    const out: Buffer[] = [];
    let off = 0;
    if (this.pendingLength > 0) {
      const take = Math.min(f - this.pendingLength, data.length);
      this.pending.push(Buffer.from(data.subarray(0, take)));
      this.pendingLength += take;
      off = take;
      if (this.pendingLength < f) return EMPTY;
      out.push(this.seal(Buffer.concat(this.pending)));
      this.pending = [];
      this.pendingLength = 0;
    }
    for (; data.length - off >= f; off += f) out.push(this.seal(data.subarray(off, off + f)));
    if (off < data.length) {
      this.pending.push(Buffer.from(data.subarray(off)));
      this.pendingLength = data.length - off;
    }
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  /** Seals what is left (the last, short record) and close_notify if the layout says so. */
  finish(): Buffer {
    if (this.done) throw new Error("StreamSealer: finished twice");
    const out: Buffer[] = [];
    if (this.pendingLength > 0) out.push(this.seal(Buffer.concat(this.pending)));
    if (this.layout.closeNotify)
      out.push(sealRecord(this.dir, ContentType.Alert, Uint8Array.of(1, ALERTS.close_notify)));
    this.pending = [];
    this.pendingLength = 0;
    this.wipe();
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  /** Overwrites the secret and keys; nothing can be sealed afterwards. */
  wipe(): void {
    if (this.done) return;
    this.done = true;
    for (const p of this.pending) p.fill(0);
    wipeDirection(this.dir);
  }

  private seal(content: Uint8Array): Buffer {
    return sealRecord(this.dir, ContentType.ApplicationData, content);
  }
}

const EMPTY = Buffer.alloc(0);
