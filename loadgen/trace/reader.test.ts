import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { readFileSync } from "node:fs";
import { readTrace, TraceReader } from "./reader.js";
import { fixture, withTempDir } from "../test-support.js";

test("CLF fixture: records in order, bad lines counted by reason with line numbers", async () => {
  const { records, stats } = await readTrace(fixture("clf.log"));
  assert.equal(stats.format, "clf");
  assert.equal(stats.lines, 14);
  assert.equal(stats.ignored, 1);
  assert.deepEqual(
    records.map((r) => [r.line, r.method, r.url, r.status]),
    [
      [1, "GET", "/index.html", 200],
      [2, "GET", "/", 304],
      [3, "GET", "/images/logo.gif", 200],
      [6, "GET", "/old.html", 200],
      [7, "GET", "/missing.html", 404],
      [8, "POST", "/cgi-bin/form", 200],
      [13, "GET", "/a%20b.html", 200],
      [14, "HEAD", "/index.html", 200],
    ],
  );
  assert.equal(stats.records, 8);
  assert.equal(stats.bad, 5);
  assert.deepEqual(stats.badByReason, {
    syntax: 1,
    bad_date: 1,
    bad_status: 1,
    bad_bytes: 1,
    bad_request: 1,
  });
  assert.deepEqual(
    stats.badSamples.map((b) => [b.line, b.reason]),
    [
      [5, "syntax"],
      [9, "bad_date"],
      [10, "bad_status"],
      [11, "bad_bytes"],
      [12, "bad_request"],
    ],
  );
  assert.equal(stats.badSamples[0]!.text, "this line is not a log line");
});

test("Combined fixture is detected as combined; a half-combined line is read as CLF with one more field", async () => {
  const { records, stats } = await readTrace(fixture("combined.log"));
  assert.equal(stats.format, "combined");
  assert.deepEqual(
    records.map((r) => r.url),
    ["/apache_pb.gif", '/q.html?x="1"', "/truncated.html", "/ok.html"],
  );
  assert.equal(stats.bad, 0);
});

test("NASA TSV fixture: header ignored, bad rows counted", async () => {
  const { records, stats } = await readTrace(fixture("nasa.tsv"));
  assert.equal(stats.format, "nasa-tsv");
  assert.equal(records.length, 3);
  assert.equal(records[1]!.url, "/shuttle/countdown/");
  assert.equal(stats.ignored, 1);
  assert.deepEqual(stats.badByReason, { bad_time: 1, syntax: 2 });
});

test("EPA fixture: HTTP/0.9 accepted, bad clock and unquoted request counted", async () => {
  const { records, stats } = await readTrace(fixture("epa.log"));
  assert.equal(stats.format, "epa");
  assert.equal(records.length, 6);
  assert.equal(records.at(-1)!.protocol, null);
  assert.deepEqual(stats.badByReason, { bad_date: 1, syntax: 1 });
});

test("URL list fixture: comments and blanks ignored, non-http lines bad", async () => {
  const { records, stats } = await readTrace(fixture("urls.txt"));
  assert.equal(stats.format, "urls");
  assert.deepEqual(
    records.map((r) => r.url),
    ["/", "/docs/a.html", "/relative/b.gif", "/c.jpg?size=2#frag"],
  );
  assert.equal(stats.ignored, 2);
  assert.deepEqual(stats.badByReason, { bad_url: 2 });
});

test("an explicit format overrides detection: every line of another format is bad", async () => {
  const { records, stats } = await readTrace(fixture("epa.log"), { format: "clf" });
  assert.equal(records.length, 0);
  assert.equal(stats.bad, 8);
});

test("gzip traces and CRLF line ends are read transparently", async () => {
  await withTempDir(async (dir) => {
    const text = readFileSync(fixture("clf.log"), "utf8").replace(/\n/g, "\r\n");
    const path = join(dir, "t.log.gz");
    writeFileSync(path, gzipSync(text));
    const { records, stats } = await readTrace(path);
    assert.equal(stats.format, "clf");
    assert.equal(records.length, 8);
    assert.equal(records[0]!.bytes, 1839);
  });
});

test("a long trace streams through in constant memory and counts every line", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "big.log");
    const lines: string[] = [];
    for (let i = 0; i < 50_000; i++) {
      lines.push(
        i % 1000 === 999
          ? "broken"
          : `h${i} - - [01/Aug/1995:00:00:01 -0400] "GET /f${i % 97}.html HTTP/1.0" 200 ${i}`,
      );
    }
    writeFileSync(path, lines.join("\n") + "\n");
    const reader = await TraceReader.open(path);
    let n = 0;
    let sum = 0;
    for await (const r of reader) {
      n++;
      sum += r.bytes ?? 0;
    }
    assert.equal(n, 49_950);
    assert.equal(reader.stats.bad, 50);
    assert.equal(reader.stats.badSamples.length, 5);
    let expected = 0;
    for (let i = 0; i < 50_000; i++) if (i % 1000 !== 999) expected += i;
    assert.equal(sum, expected);
  });
});

test("a missing or unrecognizable trace is a clear error", async () => {
  await assert.rejects(TraceReader.open("/nonexistent/trace.log"), /cannot read trace/);
  await withTempDir(async (dir) => {
    const path = join(dir, "junk");
    writeFileSync(path, "hello\nworld\n");
    await assert.rejects(TraceReader.open(path), /cannot detect the format/);
  });
});

test("an endless line is cut off as too_long without buffering it, and reading goes on", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "long.log");
    const ok = 'h - - [01/Aug/1995:00:00:01 -0400] "GET /a.html HTTP/1.0" 200 1';
    writeFileSync(path, `${ok}\n${"y".repeat(3_000_000)}\n${ok}\n${"z".repeat(200_000)}`);
    const { records, stats } = await readTrace(path, { format: "clf" });
    assert.equal(records.length, 2);
    assert.deepEqual(stats.badByReason, { too_long: 2 });
    assert.deepEqual(
      stats.badSamples.map((b) => b.line),
      [2, 4],
    );
  });
});
