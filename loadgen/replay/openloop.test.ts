// The open loop (--rate, --speed) against real HTTP servers on loopback: a slow one that
// cannot keep up, one that stalls for a second, and trace timestamps replayed faster.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { runReplay } from "./run.js";
import { parseHgrm } from "../histogram.js";
import { formatClfDate } from "../trace/formats.js";
import { rawHttpServer, withTempDir } from "../test-support.js";

function urlTrace(dir: string, paths: string[]): string {
  const p = join(dir, "urls.txt");
  writeFileSync(p, paths.join("\n") + "\n");
  return p;
}

const OK = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

test("a target that cannot keep up: achieved < intended rate, drops and backlog are reported", async () => {
  await withTempDir(async (dir) => {
    // One connection, 25 ms per answer: at most 40 requests/s.
    const server = await rawHttpServer((socket) => {
      setTimeout(() => socket.write(OK), 25);
    });
    try {
      const hgrm = join(dir, "lat.hgrm");
      const log = join(dir, "per-second.tsv");
      const r = await runReplay({
        trace: urlTrace(dir, ["/a", "/b"]),
        target: server.url,
        conns: 1,
        keepalive: true,
        rate: 200,
        durationS: 2,
        maxBacklog: 20,
        hgrmOut: hgrm,
        logOut: log,
      });
      const o = r.open_loop!;
      assert.equal(r.params.pacing, "rate");
      assert.equal(o.intended_rps, 200);
      assert.ok(o.due >= 390 && o.due <= 401, `due ${o.due}`);
      assert.ok(o.achieved_rps < 60, `achieved ${o.achieved_rps}`);
      assert.ok(o.dropped > 250, `dropped ${o.dropped}`);
      assert.equal(o.max_backlog, 20);
      assert.equal(o.sent + o.dropped + o.backlog_at_end, o.due);
      assert.equal(o.kept_up, false);
      assert.ok(
        r.notes.some((n) => /did not keep up/.test(n)),
        r.notes.join("; "),
      );
      // Every answer waited in the queue: from the intended time it is far slower.
      const corrected = r.latency_from_intended_ms!;
      assert.ok(corrected.p50 > 2 * r.latency_ms.p50, `${corrected.p50} vs ${r.latency_ms.p50}`);
      // The .hgrm files hold the corrected (and next to it the uncorrected) distribution.
      const parsed = parseHgrm(readFileSync(hgrm, "utf8"));
      assert.equal(parsed.totalCount, r.ok);
      assert.equal(parsed.max, corrected.max);
      const plain = parseHgrm(readFileSync(join(dir, "lat.uncorrected.hgrm"), "utf8"));
      assert.equal(plain.max, r.latency_ms.max);
      const rows = readFileSync(log, "utf8").trim().split("\n");
      assert.equal(rows[0], "second\tsent\tcompleted\tok\terrors\tmbps\tp50_ms\tp90_ms\tp99_ms\tmax_ms");
      assert.equal(rows.length - 1, r.per_second.length);
      assert.equal(
        r.per_second.reduce((a, s) => a + s.sent, 0),
        o.sent,
      );
    } finally {
      await server.close();
    }
  });
});

test("a 1 s server stall shows in the latency from the intended time, not in the one from the send", async () => {
  await withTempDir(async (dir) => {
    let seen = 0;
    let stallUntil = 0;
    const server = await rawHttpServer((socket) => {
      // The 25th request freezes the server for a second (as SIGSTOP would).
      if (++seen === 25) stallUntil = performance.now() + 1000;
      const wait = stallUntil - performance.now();
      if (wait > 0) setTimeout(() => socket.write(OK), wait);
      else socket.write(OK);
    });
    try {
      const r = await runReplay({
        trace: urlTrace(dir, ["/a"]),
        target: server.url,
        conns: 2,
        keepalive: true,
        rate: 50,
        durationS: 3,
      });
      const o = r.open_loop!;
      assert.equal(r.errors, 0);
      assert.ok(r.ok >= 145, `ok ${r.ok}`);
      // The backlog drained after the stall: everything due was sent.
      assert.equal(o.dropped, 0);
      assert.equal(o.kept_up, true);
      assert.ok(o.max_backlog >= 30, `max backlog ${o.max_backlog}`);
      // A third of the requests came due while the server was frozen.
      const corrected = r.latency_from_intended_ms!;
      assert.ok(corrected.p90 > 400, `corrected p90 ${corrected.p90}`);
      assert.ok(corrected.max > 900, `corrected max ${corrected.max}`);
      assert.ok(r.latency_ms.p90 < 200, `uncorrected p90 ${r.latency_ms.p90}`);
    } finally {
      await server.close();
    }
  });
});

test("--speed 10 replays a 40 s trace in 4 s, at the trace's own pace; --speed needs timestamps", async () => {
  await withTempDir(async (dir) => {
    const arrivals: number[] = [];
    const server = await rawHttpServer((socket) => {
      arrivals.push(performance.now());
      socket.write(OK);
    });
    try {
      // 41 requests one logged second apart, then 3 more in the last second.
      const t0 = 810_000_000;
      const lines = Array.from({ length: 41 }, (_, i) => i).concat([40, 40, 40]);
      const trace = join(dir, "t.log");
      writeFileSync(
        trace,
        lines.map((s, i) => `h - - [${formatClfDate(t0 + s)}] "GET /p${i} HTTP/1.0" 200 2\n`).join(""),
      );
      const r = await runReplay({ trace, target: server.url, conns: 4, keepalive: true, speed: 10 });
      assert.equal(r.params.pacing, "trace");
      assert.equal(r.trace!.span_s, 40);
      assert.equal(r.ok, 44);
      assert.equal(r.open_loop!.kept_up, true);
      // The server saw the replay take the trace's span / 10, within 5% (measured from the
      // second request: the first also waited for the connect).
      const span = arrivals.at(-1)! - arrivals[1]!;
      assert.ok(Math.abs(span - 3900) < 195, `requests 1..43 arrived over ${span} ms (want 3900 +- 5%)`);
      assert.ok(r.elapsed_s >= 3.9 && r.elapsed_s < 4.4, `elapsed ${r.elapsed_s} s`);
      // Arrivals keep the trace's spacing, and the last logged second's requests go together.
      const gap = arrivals[30]! - arrivals[10]!;
      assert.ok(Math.abs(gap - 2000) < 100, `arrivals 10 -> 30: ${gap} ms (want 2000 +- 5%)`);
      assert.ok(arrivals[43]! - arrivals[40]! < 50, "the last second's requests go together");
      await assert.rejects(
        runReplay({ trace: urlTrace(dir, ["/a"]), target: server.url, speed: 2 }),
        /needs timestamps/,
      );
    } finally {
      await server.close();
    }
  });
});

test("open-loop options: verification still applies, a rate and a speed exclude each other", async () => {
  await withTempDir(async (dir) => {
    const server = await rawHttpServer((socket, head) => {
      if (head.startsWith("GET /bad ")) socket.write("HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n");
      else socket.write(OK);
    });
    try {
      const trace = urlTrace(dir, ["/a", "/bad", "/c", "/d"]);
      const r = await runReplay({
        trace,
        target: server.url,
        conns: 2,
        clients: 2,
        keepalive: true,
        rate: 100,
        schedule: "poisson",
        seed: 3,
        requests: 40,
      });
      assert.equal(r.requests, 40);
      assert.equal(r.verify_failures, 10);
      assert.deepEqual(r.verify_failures_by_kind, { status: 10 });
      assert.equal(r.params.seed, 3);
      assert.deepEqual(
        r.by_class.map((c) => [c.key, c.requests]),
        [
          ["200 1B-1K", 30],
          ["500 0", 10],
        ],
      );
      assert.deepEqual(r.by_url.map((u) => [u.path, u.requests]).sort(), [
        ["/a", 10],
        ["/bad", 10],
        ["/c", 10],
        ["/d", 10],
      ]);
      await assert.rejects(runReplay({ trace, target: server.url, rate: 10, speed: 2 }), /rate or a speed/);
      await assert.rejects(runReplay({ trace, target: server.url, rate: 0 }), /rate must be/);
      await assert.rejects(runReplay({ trace, target: server.url, maxBacklog: 5 }), /needs a rate/);
    } finally {
      await server.close();
    }
  });
});

test("an abort stops the open loop at once: interrupted, what was due and unsent is the backlog", async () => {
  await withTempDir(async (dir) => {
    const server = await rawHttpServer((socket) => socket.write(OK));
    try {
      const abort = new AbortController();
      const started = performance.now();
      const run = runReplay({
        trace: urlTrace(dir, ["/a"]),
        target: server.url,
        keepalive: true,
        rate: 50,
        durationS: 60,
        signal: abort.signal,
        progressIntervalMs: 50,
        onProgress: (p) => {
          if (p.requests >= 10) abort.abort();
        },
      });
      const r = await run;
      assert.equal(r.stopped_by, "interrupted");
      assert.ok(performance.now() - started < 10_000, "stopped long before the 60 s");
      const o = r.open_loop!;
      assert.equal(o.sent + o.dropped + o.backlog_at_end, o.due);
      assert.ok(r.requests >= 10 && r.requests < 100, `requests ${r.requests}`);
    } finally {
      await server.close();
    }
  });
});
