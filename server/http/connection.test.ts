// HttpConnection's linger after its FIN, with a fake transport (no I/O, times passed in).
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { HttpConnection, type HttpConnectionHost } from "./connection.js";
import { ServerStats } from "./stats.js";
import { DateCache } from "./date.js";
import { DEFAULT_LIMITS } from "./parser.js";
import type { Conn } from "../transport/conn.js";

class FakeConn extends EventEmitter {
  writableLength = 0;
  destroyed = false;
  ended = false;
  write(): boolean {
    return true;
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.destroyed = true;
  }
  pause(): void {}
  resume(): void {}
}

const TIMEOUTS = { headerMs: 10_000, idleMs: 30_000, sendMs: 30_000, lingerMs: 5_000 };

function setup() {
  const conn = new FakeConn();
  const stats = new ServerStats();
  const env = {
    responder: {},
    mode: {},
    stats,
    limits: DEFAULT_LIMITS,
    timeouts: TIMEOUTS,
    dates: new DateCache(),
    log: { warn() {}, info() {}, debug() {}, error() {} },
    draining: true,
    connectionClosed() {},
  } as unknown as HttpConnectionHost;
  const c = new HttpConnection(1, conn as unknown as Conn, env);
  return { conn, stats, c };
}

test("linger: with nothing queued, the connection is reset lingerMs after our FIN", () => {
  const { conn, c } = setup();
  const t0 = Date.now();
  c.drain(); // idle connection of a draining server: FIN now
  assert.equal(conn.ended, true);
  c.checkDeadline(t0 + TIMEOUTS.lingerMs - 100);
  assert.equal(conn.destroyed, false);
  c.checkDeadline(t0 + TIMEOUTS.lingerMs + 100);
  assert.equal(conn.destroyed, true);
});

test("linger: a response still draining through a slow link is not cut; the clock starts once it is out", () => {
  const { conn, stats, c } = setup();
  const t0 = Date.now();
  conn.writableLength = 4_000_000; // a large body still queued behind our FIN
  c.drain();
  let t = t0;
  for (const left of [3_000_000, 2_000_000, 1_000_000, 1]) {
    t += TIMEOUTS.lingerMs + 100;
    conn.writableLength = left;
    c.checkDeadline(t);
    assert.equal(conn.destroyed, false, `cut with ${left} bytes left`);
  }
  t += TIMEOUTS.lingerMs;
  conn.writableLength = 0;
  c.checkDeadline(t);
  assert.equal(conn.destroyed, false, "the client gets its linger time after the last byte");
  c.checkDeadline(t + TIMEOUTS.lingerMs + 100);
  assert.equal(conn.destroyed, true);
  assert.equal(stats.sendTimeouts, 0);
});

test("linger: a peer that stops taking bytes is cut after the send timeout, counted", () => {
  const { conn, stats, c } = setup();
  const t0 = Date.now();
  conn.writableLength = 1_000_000;
  c.drain();
  c.checkDeadline(t0 + TIMEOUTS.lingerMs + 100);
  assert.equal(conn.destroyed, false);
  c.checkDeadline(t0 + TIMEOUTS.sendMs + 100); // no byte left the queue meanwhile
  assert.equal(conn.destroyed, true);
  assert.equal(stats.sendTimeouts, 1);
});
