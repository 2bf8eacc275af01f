// The dashboard's server-sent event streams, bounded: at most `maxSubscribers` streams, and
// per stream at most one write beyond the socket's buffer limit. A stream whose socket has
// not drained skips snapshots (the next one supersedes them) and keeps only the latest replay
// state for when it drains; one that skips `maxSkipped` snapshots in a row is dropped. A page
// that stops reading (a background tab, a stalled proxy) costs a bounded buffer, never a
// growing one. Works on any writable with the stream API (tests use a stand-in).

export const SSE_LIMITS = {
  /** Streams served at once; more get 503. */
  maxSubscribers: 32,
  /** Snapshots skipped in a row (the socket never drained) before the stream is dropped. */
  maxSkipped: 30,
};
export type SseLimits = typeof SSE_LIMITS;

/** What a stream is written to (node's ServerResponse is one). */
export interface SseSink {
  write(chunk: string): boolean;
  readonly writableNeedDrain: boolean;
  readonly writableLength: number;
  once(event: "drain", listener: () => void): unknown;
  destroy(): void;
}

export class SseStats {
  /** Streams open now. */
  subscribers = 0;
  /** Streams refused because `maxSubscribers` were open. */
  refusedFull = 0;
  /** Snapshots not written to a stream whose socket had not drained. */
  skipped = 0;
  /** Streams closed because they stayed behind for `maxSkipped` snapshots. */
  dropped = 0;
  /** The largest write buffer a stream had (bytes; bounded by the socket's limit + one event). */
  maxBuffered = 0;
}

/** Formats one event. */
export function sseEvent(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** One open stream. */
export class SseSubscriber {
  private skippedInRow = 0;
  /** The latest state event not yet written (sent when the socket drains). */
  private pendingState: string | undefined;
  private waitingForDrain = false;
  private closed = false;

  constructor(
    private readonly sink: SseSink,
    private readonly limits: SseLimits,
    private readonly stats: SseStats,
  ) {}

  /** A snapshot: skipped while the socket is behind (the next one supersedes it). */
  snapshot(data: unknown): void {
    if (this.closed) return;
    if (this.sink.writableNeedDrain) {
      this.stats.skipped++;
      if (++this.skippedInRow >= this.limits.maxSkipped) this.drop();
      return;
    }
    this.skippedInRow = 0;
    this.write(sseEvent("snapshot", data));
  }

  /** A state change (the replay's): the latest one is always delivered, older ones may be merged. */
  state(event: string, data: unknown): void {
    if (this.closed) return;
    const text = sseEvent(event, data);
    if (this.sink.writableNeedDrain) {
      this.pendingState = text;
      return;
    }
    this.write(text);
  }

  /** The stream ended (client gone or server closing). */
  close(): void {
    this.closed = true;
    this.pendingState = undefined;
  }

  private write(text: string): void {
    const ok = this.sink.write(text);
    this.stats.maxBuffered = Math.max(this.stats.maxBuffered, this.sink.writableLength);
    if (!ok && !this.waitingForDrain) {
      this.waitingForDrain = true;
      this.sink.once("drain", () => {
        this.waitingForDrain = false;
        const pending = this.pendingState;
        this.pendingState = undefined;
        if (pending !== undefined && !this.closed) this.write(pending);
      });
    }
  }

  private drop(): void {
    this.stats.dropped++;
    this.close();
    this.sink.destroy();
  }
}
