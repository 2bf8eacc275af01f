// A document body that arrives over time into one buffer of its final size, readable while it
// fills. The peer's chunks are copied once, into place; readers (one per client response, any
// number, any range) get views of the bytes already there and wait for the rest. So a large
// object forwarded from a peer goes out to the client as it arrives (no store-and-forward
// delay), a burst of requests for it shares one transfer, and there is no list of chunks to
// concatenate afterwards. Bytes once filled never change: views handed out stay valid. Pure.

export class FillingBody {
  readonly buf: Buffer;
  private filled = 0;
  private error: Error | null = null;
  private waiters: (() => void)[] = [];

  constructor(readonly size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  /** Bytes filled so far (a prefix of the body). */
  get received(): number {
    return this.filled;
  }

  get complete(): boolean {
    return this.filled === this.size;
  }

  get failed(): Error | null {
    return this.error;
  }

  /** Copies the next bytes into place; false (nothing copied) if they would overrun the size. */
  append(chunk: Uint8Array): boolean {
    if (this.error !== null || chunk.length > this.size - this.filled) return false;
    this.buf.set(chunk, this.filled);
    this.filled += chunk.length;
    this.wake();
    return true;
  }

  /** Gives up: readers that need bytes not yet filled get `err`. */
  fail(err: Error): void {
    if (this.error !== null || this.complete) return;
    this.error = err;
    this.wake();
  }

  /** Resolves once complete; rejects once failed. */
  async done(): Promise<void> {
    while (!this.complete) {
      if (this.error !== null) throw this.error;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Bytes [start, end] (inclusive), as views of the buffer, as soon as they are filled. */
  async *read(start: number, end: number): AsyncGenerator<Buffer> {
    if (start < 0 || end >= this.size || start > end + 1) throw new RangeError(`bad range ${start}-${end}`);
    let pos = start;
    while (pos <= end) {
      if (this.filled > pos) {
        const stop = Math.min(this.filled, end + 1);
        yield this.buf.subarray(pos, stop);
        pos = stop;
        continue;
      }
      if (this.error !== null) throw this.error;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    const w = this.waiters;
    this.waiters = [];
    for (const resolve of w) resolve();
  }
}
