// The send buffer of one connection: bytes the application wrote that are not yet
// acknowledged, as a FIFO of chunks. Writes are kept without copying (the socket layer hands
// us Buffers it owns); `slice` returns a view when a segment lies inside one chunk, which is
// the common case for large writes, and copies only across chunk boundaries.

export class SendQueue {
  private chunks: Uint8Array[] = [];
  /** Index of the first live chunk (chunks before it are consumed; compacted lazily). */
  private first = 0;
  /** Bytes of chunks[first] already consumed. */
  private head = 0;
  /** Total live bytes. */
  length = 0;
  // Cursor of the last slice: a chunk index and the queue offset where its live bytes start.
  // Segmentation walks forward, so this keeps slice O(1) amortised with many small chunks.
  private curIndex = 0;
  private curStart = 0;

  push(data: Uint8Array): void {
    if (data.length === 0) return;
    this.chunks.push(data);
    this.length += data.length;
  }

  /** Drops `n` bytes from the front (they were acknowledged). */
  consume(n: number): void {
    if (n <= 0) return;
    if (n >= this.length) {
      this.chunks = [];
      this.first = 0;
      this.head = 0;
      this.length = 0;
      this.curIndex = 0;
      this.curStart = 0;
      return;
    }
    this.length -= n;
    while (n > 0) {
      const left = this.chunks[this.first].length - this.head;
      if (n >= left) {
        n -= left;
        this.head = 0;
        this.first++;
      } else {
        this.head += n;
        n = 0;
      }
    }
    if (this.first > 64 && this.first * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.first);
      this.first = 0;
    }
    this.curIndex = this.first;
    this.curStart = 0;
  }

  /** `len` (> 0) bytes starting `off` bytes after the front. Caller keeps off + len <= length. */
  slice(off: number, len: number): Uint8Array {
    let i = this.first;
    let start = 0; // queue offset of chunks[i]'s first live byte
    if (off >= this.curStart && this.curIndex >= this.first && this.curIndex < this.chunks.length) {
      i = this.curIndex;
      start = this.curStart;
    }
    let avail = this.chunks[i].length - (i === this.first ? this.head : 0);
    while (off >= start + avail) {
      start += avail;
      i++;
      avail = this.chunks[i].length;
    }
    this.curIndex = i;
    this.curStart = start;
    const chunk = this.chunks[i];
    let pos = off - start + (i === this.first ? this.head : 0);
    if (pos + len <= chunk.length) return chunk.subarray(pos, pos + len);
    const out = new Uint8Array(len);
    let filled = 0;
    while (filled < len) {
      const c = this.chunks[i++];
      const take = Math.min(c.length - pos, len - filled);
      out.set(c.subarray(pos, pos + take), filled);
      filled += take;
      pos = 0;
    }
    return out;
  }
}
