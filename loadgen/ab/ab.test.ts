import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runSingleUrl } from "./run.js";
import { buildSite } from "../site.js";
import { rawHttpServer } from "../test-support.js";
import { startOrigin, type OriginServer } from "../../origin/server.js";
import { createLogger } from "../../server/log.js";

describe("single-URL mode (autocannon) against the origin", () => {
  let dir = "";
  let manifest = "";
  let origin: OriginServer;
  let base = "";

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), `sc-loadgen-ab-${process.pid}-`));
    const trace = join(dir, "t.log");
    const line = (url: string, status: number, bytes: number) =>
      `h - - [01/Aug/1995:00:00:01 -0400] "GET ${url} HTTP/1.0" ${status} ${bytes}`;
    writeFileSync(trace, [line("/doc.bin", 200, 20_000), line("/gone.html", 404, 0)].join("\n") + "\n");
    manifest = join(dir, "m.jsonl");
    await buildSite({ trace, out: join(dir, "root"), manifest });
    origin = await startOrigin({
      root: join(dir, "root"),
      host: "127.0.0.1",
      port: 0,
      logger: createLogger("silent"),
    });
    base = `http://127.0.0.1:${origin.address.port}`;
  });

  after(async () => {
    await origin?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("every response checked: status and length; the body once by SHA-256", async () => {
    const r = await runSingleUrl({
      url: `${base}/doc.bin`,
      connections: 4,
      workers: 2,
      requests: 400,
      verify: manifest,
    });
    assert.equal(r.mode, "single-url");
    assert.equal(r.preflight.verified, "ok");
    assert.equal(r.params.expect_length, 20_000);
    assert.ok(r.requests >= 400, String(r.requests));
    assert.equal(r.ok, r.requests);
    assert.equal(r.errors + r.verify_failures, 0);
    assert.deepEqual(r.status_counts, { 200: r.requests });
    assert.equal(r.bytes, r.requests * 20_000);
    assert.equal(r.stopped_by, "requests");
    assert.ok(r.rps > 0 && r.latency_ms.p50 > 0 && r.latency_ms.p50 <= r.latency_ms.max);
  });

  test("a wrong length or status is a verification failure on every response", async () => {
    const len = await runSingleUrl({
      url: `${base}/doc.bin`,
      connections: 2,
      requests: 100,
      expectLength: 19_999,
    });
    assert.equal(len.preflight.verified, "mismatch");
    assert.equal(len.ok, 0);
    assert.equal(len.verify_failures_by_kind.length, len.verify_failures);
    assert.equal(len.verify_failures, len.requests + 1); // + the preflight
    const gone = await runSingleUrl({ url: `${base}/gone.html`, connections: 2, requests: 50 });
    assert.equal(gone.params.expect_status, 200);
    assert.equal(gone.verify_failures_by_kind.status, gone.requests);
    const expected404 = await runSingleUrl({
      url: `${base}/gone.html`,
      connections: 2,
      requests: 50,
      verify: manifest,
    });
    assert.equal(expected404.params.expect_status, 404);
    assert.equal(expected404.ok, expected404.requests);
  });

  test("a duration bounds the run", async () => {
    const r = await runSingleUrl({ url: `${base}/doc.bin`, connections: 2, durationS: 0.5 });
    assert.equal(r.stopped_by, "duration");
    assert.ok(r.requests > 0 && r.ok === r.requests);
  });
});

test("single-URL mode counts a server closing mid-response as errors and does not hang", async () => {
  let first = true;
  const server = await rawHttpServer((socket) => {
    if (first) {
      // The preflight gets a whole response; the run gets cut-off ones.
      first = false;
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
      return;
    }
    socket.write("HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\nabc");
    socket.destroy();
  });
  try {
    const r = await runSingleUrl({ url: `${server.url}/x`, connections: 2, durationS: 0.5, timeoutMs: 1000 });
    assert.equal(r.ok, 0);
    assert.equal(r.verify_failures, 0, JSON.stringify(r.verify_failure_samples));
    assert.ok(r.errors > 0, JSON.stringify(r));
    assert.equal(r.errors_by_kind.socket_closed, r.errors);
  } finally {
    await server.close();
  }
});
