// The event streams' bounds with a stand-in socket: skipping behind a full buffer, dropping a
// stream that never drains, merging state events, resuming on drain.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { SseStats, SseSubscriber, type SseSink } from "./events.js";

/** A socket with a 100-byte buffer that drains only when the test says so. */
class FakeSink extends EventEmitter implements SseSink {
  readonly written: string[] = [];
  buffered = 0;
  destroyed = false;
  write(chunk: string): boolean {
    this.written.push(chunk);
    this.buffered += chunk.length;
    return this.buffered < 100;
  }
  get writableNeedDrain(): boolean {
    return this.buffered >= 100;
  }
  get writableLength(): number {
    return this.buffered;
  }
  destroy(): void {
    this.destroyed = true;
  }
  drain(): void {
    this.buffered = 0;
    this.emit("drain");
  }
}

const big = { pad: "x".repeat(120) };

test("a stream that never drains gets one write past its buffer, skips snapshots, then is dropped", () => {
  const sink = new FakeSink();
  const stats = new SseStats();
  const sub = new SseSubscriber(sink, { maxSubscribers: 32, maxSkipped: 5 }, stats);
  sub.snapshot(big);
  assert.equal(sink.written.length, 1);
  for (let i = 0; i < 4; i++) sub.snapshot(big);
  assert.equal(sink.written.length, 1, "nothing more queued behind a full buffer");
  assert.equal(stats.skipped, 4);
  assert.equal(sink.destroyed, false);
  sub.snapshot(big);
  assert.equal(stats.skipped, 5);
  assert.equal(stats.dropped, 1);
  assert.equal(sink.destroyed, true);
  for (let i = 0; i < 1000; i++) sub.snapshot(big);
  assert.equal(sink.written.length, 1, "a dropped stream gets nothing");
  assert.equal(stats.skipped, 5);
  assert.ok(stats.maxBuffered <= 100 + JSON.stringify(big).length + 40, `buffered ${stats.maxBuffered}`);
});

test("state events behind a full buffer are merged into the latest, sent on drain; snapshots resume", () => {
  const sink = new FakeSink();
  const stats = new SseStats();
  const sub = new SseSubscriber(sink, { maxSubscribers: 32, maxSkipped: 5 }, stats);
  sub.snapshot(big);
  for (let i = 1; i <= 50; i++) sub.state("replay", { running: i < 50, n: i });
  sub.snapshot(big);
  assert.equal(sink.written.length, 1);
  sink.drain();
  assert.equal(sink.written.length, 2);
  assert.match(sink.written[1]!, /^event: replay\ndata: \{"running":false,"n":50\}\n\n$/);
  // Skips in a row are what counts: a stream that catches up is not dropped.
  sink.drain();
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 4; i++) sub.snapshot(big);
    sink.drain();
  }
  assert.equal(stats.dropped, 0);
  assert.equal(sink.destroyed, false);
});

test("a closed stream writes nothing, also not a pending state on a late drain", () => {
  const sink = new FakeSink();
  const sub = new SseSubscriber(sink, { maxSubscribers: 32, maxSkipped: 5 }, new SseStats());
  sub.snapshot(big);
  sub.state("replay", { running: true });
  sub.close();
  sink.drain();
  sub.snapshot(big);
  assert.equal(sink.written.length, 1);
});
