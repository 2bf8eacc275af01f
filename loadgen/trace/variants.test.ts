// The log variants people have (issue 24), one fixture each (loadgen/fixtures/): detected as
// the right format, every field read, the same instant read as the same `time` whatever the
// format, and each round-trips through `site` and a verified replay against an origin server.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { NothingToReplayError, readTrace, sampleTrace } from "./reader.js";
import { detectFormat } from "./formats.js";
import { FIRST, VARIANT_FIXTURES } from "./variant-fixtures.js";
import { buildSite } from "../site.js";
import { runReplay } from "../replay/run.js";
import { fixture } from "../test-support.js";
import { startOrigin, type OriginServer } from "../../origin/server.js";
import { createLogger } from "../../server/log.js";

for (const v of VARIANT_FIXTURES) {
  test(`${v.file}: detected as ${v.format}, every line read, the first at its instant`, async () => {
    assert.equal(detectFormat(await sampleTrace(fixture(v.file))), v.format);
    const { records, stats } = await readTrace(fixture(v.file));
    assert.equal(stats.format, v.format);
    assert.equal(stats.records, v.records, JSON.stringify(stats.badSamples));
    assert.deepEqual(stats.badByReason, v.badByReason);
    const r = records[0]!;
    assert.deepEqual(
      { url: r.url, status: r.status, bytes: r.bytes, host: r.host, method: r.method, time: r.time },
      { ...v.first, method: "GET", time: v.ownClock ?? FIRST },
    );
    if (v.ownClock !== undefined) return;
    // Every line is within seconds of the first: one clock, one unit (seconds), whatever the format.
    for (const x of records)
      assert.ok(x.time !== null && x.time >= FIRST && x.time < FIRST + 20, `${x.line}: ${x.time}`);
  });
}

describe("each variant through site and a verified replay against an origin server", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), `sc-variants-${process.pid}-`));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const v of VARIANT_FIXTURES) {
    test(v.file, async () => {
      const root = join(dir, v.file, "root");
      const manifest = join(dir, v.file, "manifest.jsonl");
      const site = await buildSite({ trace: fixture(v.file), out: root, manifest });
      assert.equal(site.trace.format, v.format);
      assert.equal(site.replayable, v.replayable, JSON.stringify(site.skippedByReason));
      let origin: OriginServer | undefined;
      try {
        origin = await startOrigin({ root, host: "127.0.0.1", port: 0, logger: createLogger("silent") });
        const r = await runReplay({
          trace: fixture(v.file),
          target: `http://127.0.0.1:${origin.address.port}`,
          verify: manifest,
          conns: 2,
          timeoutMs: 5000,
        });
        assert.equal(r.requests, v.replayable);
        assert.equal(r.ok, v.replayable, JSON.stringify(r.verify_failure_samples));
        assert.equal(r.verify_failures, 0);
        assert.equal(r.errors, 0);
      } finally {
        await origin?.close();
      }
    });
  }
});

test("urls.txt: a URL list logs no status, so site has nothing to build and says why", async () => {
  const dir = await mkdtemp(join(tmpdir(), `sc-variants-urls-${process.pid}-`));
  try {
    await assert.rejects(
      buildSite({ trace: fixture("urls.txt"), out: join(dir, "root"), manifest: join(dir, "m.jsonl") }),
      (err: Error) =>
        err instanceof NothingToReplayError &&
        /4 records, 2 bad lines \(bad_url 2\); every record skipped \(query 1, no_status 3\)/.test(
          err.message,
        ) &&
        /bad line 7 \(bad_url\): ftp:/.test(err.message),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
