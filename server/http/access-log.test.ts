import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AccessLog,
  clfDate,
  escapeClf,
  fileSink,
  formatCombined,
  formatJson,
  type LogSink,
  type RequestRecord,
} from "./access-log.js";
import { lineParser } from "../../loadgen/trace/formats.js";
import { ParseError, RequestParser, type HttpRequest } from "./parser.js";

function parse(raw: string): HttpRequest {
  const p = new RequestParser();
  p.feed(Buffer.from(raw, "latin1"));
  const r = p.next();
  assert.ok(r !== null && !(r instanceof ParseError), `parsed: ${JSON.stringify(r)}`);
  return r;
}

const start = Date.UTC(2026, 11, 6, 19, 21, 18, 250);
const record = (over: Partial<RequestRecord> = {}): RequestRecord => ({
  req: parse(
    'GET /a%20b/"q".html?x=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: t\\"o\xe9\r\nReferer: http://r/\r\n\r\n',
  ),
  remoteAddr: "198.18.0.2",
  startMs: start,
  durationS: 0.0004126,
  status: 200,
  bodyBytes: 1839,
  sentBytes: 2101,
  clonedTo: null,
  ...over,
});

test("combined lines: escaped as nginx does, with node/cloned-to/rt/sent, read back by loadgen's CLF reader", () => {
  assert.equal(clfDate(start), "06/Dec/2026:19:21:18 +0000");
  assert.equal(escapeClf('a"b\\c\x7fd\u00e9'), 'a\\"b\\\\c\\x7fd\\xe9');
  assert.equal(escapeClf("a b", true), "a\\x20b");
  const local = formatCombined(record(), "node1");
  assert.equal(
    local,
    '198.18.0.2 - - [06/Dec/2026:19:21:18 +0000] "GET /a%20b/\\"q\\".html?x=1 HTTP/1.1" 200 1839 ' +
      '"http://r/" "t\\\\\\"o\\xe9" node=node1 cloned-to=- rt=0.000413 sent=2101',
  );
  const cloned = formatCombined(
    record({ clonedTo: "node 3", status: 304, bodyBytes: 0, sentBytes: 180 }),
    "node1",
  );
  assert.match(cloned, /" 304 - "http:\/\/r\/" ".*" node=node1 cloned-to=node\\x203 rt=0\.000413 sent=180$/);
  const refused = formatCombined(record({ req: null, status: 400, bodyBytes: 16, sentBytes: 150 }), "n");
  assert.match(refused, /"-" 400 16 "-" "-" node=n/);
  for (const format of ["clf", "combined"] as const) {
    const p = lineParser(format);
    const r = p(local, 1);
    assert.equal(r.kind, "record");
    if (r.kind !== "record") return;
    assert.equal(r.record.method, "GET");
    assert.equal(r.record.url, '/a%20b/\\"q\\".html?x=1'.replace(/\\"/g, '"'));
    assert.equal(r.record.status, 200);
    assert.equal(r.record.bytes, 1839);
    assert.equal(r.record.time, Math.floor(start / 1000));
    assert.equal(r.record.host, "198.18.0.2");
    const c = p(cloned, 2);
    assert.ok(c.kind === "record" && c.record.status === 304 && c.record.bytes === null);
  }
});

test("JSON lines: ASCII only, read back by loadgen's JSON reader with its default field names", () => {
  const line = formatJson(record({ clonedTo: "node2" }), "n\u00e9");
  assert.match(line, /^[\x20-\x7e]+$/);
  const o = JSON.parse(line) as Record<string, unknown>;
  assert.equal(o.node, "n\u00e9");
  assert.equal(o.cloned_to, "node2");
  assert.equal(o.user_agent, 't\\"o\u00e9');
  assert.equal(o.duration, 0.000413);
  const r = lineParser("json")(line, 1);
  assert.equal(r.kind, "record");
  if (r.kind !== "record") return;
  assert.deepEqual(
    [r.record.method, r.record.url, r.record.status, r.record.bytes, r.record.host, r.record.time],
    ["GET", '/a%20b/"q".html?x=1', 200, 1839, "198.18.0.2", start / 1000],
  );
});

/** A sink whose writes complete only when the test says so (a stalled disk). */
function stalledSink() {
  const writes: { data: Buffer; done: (e: Error | null) => void }[] = [];
  let reopened = 0;
  const sink: LogSink = {
    write: (data, done) => writes.push({ data, done }),
    reopen: (done) => {
      reopened++;
      done(null);
    },
    close: (done) => done(),
  };
  return { sink, writes, reopened: () => reopened };
}

test("a stalled sink: one write in flight, lines beyond the buffer bound dropped and counted, none blocks", async () => {
  const s = stalledSink();
  const log = new AccessLog(s.sink, { maxBufferBytes: 1000, flushBytes: 100, flushIntervalMs: 60_000 });
  const line = "x".repeat(99); // 100 bytes with its newline
  const t0 = performance.now();
  for (let i = 0; i < 50; i++) log.write(line);
  assert.ok(performance.now() - t0 < 50);
  // The first 100 bytes went out at once and never completed; 9 more lines fit the bound.
  assert.equal(s.writes.length, 1);
  assert.equal(log.buffered, 1000);
  assert.equal(log.counters.dropped, 40);
  // The disk comes back: the rest is written, in order, in one write.
  s.writes[0]!.done(null);
  assert.equal(s.writes.length, 2);
  assert.equal(s.writes[1]!.data.toString(), (line + "\n").repeat(9));
  s.writes[1]!.done(null);
  assert.equal(log.counters.lines, 10);
  // A failed write loses its lines, counted, and the log carries on.
  log.write(line);
  log.reopen();
  assert.equal(s.writes.length, 3);
  assert.equal(s.reopened(), 0, "reopen waits for the write in flight");
  s.writes[2]!.done(new Error("EIO"));
  assert.deepEqual([log.counters.failed, log.counters.writeErrors, s.reopened()], [1, 1, 1]);
  log.write("z");
  const closed = log.close();
  assert.equal(s.writes.length, 4);
  s.writes[3]!.done(null);
  await closed;
  assert.equal(log.counters.lines, 11);
});

test("logrotate: after the file is moved, reopen() writes on into a new file of the same name", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sc-access-"));
  try {
    const path = join(dir, "access.log");
    // Lines logged before the signal but not yet written still go to the moved file (nginx
    // flushes its buffers before re-opening too); lines logged after it, to the new one.
    const log = new AccessLog(await fileSink(path), {
      maxBufferBytes: 1 << 20,
      flushBytes: 1 << 20,
      flushIntervalMs: 60_000,
    });
    log.write("one");
    log.write("two");
    await rename(path, path + ".1");
    log.reopen();
    log.write("three");
    await log.close();
    assert.equal(await readFile(path + ".1", "utf8"), "one\ntwo\n");
    assert.equal(await readFile(path, "utf8"), "three\n");
    assert.equal(log.counters.reopens, 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
