// Every trace fixture with a site to build (all but urls.txt: a URL list logs no status)
// replayed through one cluster (origin, dispatcher, 3 nodes in sc
// mode, as `up` starts it): `site` builds each fixture's documents under its own directory
// of one root, and `sc-cluster loadgen` replays the fixture from the client host against
// the VIP with that directory as the target's path, verifying every response. Needs root.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI_BIN } from "../../cluster/processes.js";
import { destroyCluster, startCluster, type Cluster } from "../../cluster/cluster.js";
import { testPrefix } from "../../testbed/index.js";
import { buildSite } from "../site.js";
import { fixture } from "../test-support.js";
import { VARIANT_FIXTURES } from "./variant-fixtures.js";

const PREFIX = testPrefix("lv");
let dir = "";
let cluster: Cluster | undefined;
/** The directory of each fixture's documents under the root (its name, dots made dashes). */
const sub = (file: string) => file.replace(/\./g, "-");

before(async () => {
  dir = await mkdtemp(join(tmpdir(), `sc-variants-netns-${process.pid}-`));
  const root = join(dir, "root");
  for (const v of VARIANT_FIXTURES) {
    const site = await buildSite({
      trace: fixture(v.file),
      out: join(root, sub(v.file)),
      manifest: join(dir, `${sub(v.file)}.manifest.jsonl`),
    });
    assert.equal(site.replayable, v.replayable, v.file);
  }
  cluster = await startCluster({ prefix: PREFIX, nodes: 3, mode: "sc", site: root, scheduler: "rr" });
});

after(async () => {
  if (cluster) await cluster.stop();
  else await destroyCluster(PREFIX);
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface ReplayJson {
  requests: number;
  ok: number;
  errors: number;
  verify_failures: number;
  verify_failure_samples: unknown[];
  params: { format: string };
}

for (const v of VARIANT_FIXTURES) {
  test(`${v.file} (${v.format}): every replayable line verified through the cluster`, async () => {
    const c = cluster!;
    const out = join(dir, `${sub(v.file)}.result.json`);
    const args = [
      CLI_BIN,
      "loadgen",
      "--trace",
      fixture(v.file),
      "--target",
      `${c.vipUrl.replace(/\/$/, "")}/${sub(v.file)}`,
      "--verify",
      join(dir, `${sub(v.file)}.manifest.jsonl`),
      "--conns",
      "2",
      "--timeout",
      "5000",
      "--json",
      out,
    ];
    const r = await c.testbed.exec("client", process.execPath, args, { check: false, timeoutMs: 60_000 });
    assert.equal(r.code, 0, `loadgen exited ${r.code}: ${r.stderr}`);
    const json = JSON.parse(await readFile(out, "utf8")) as ReplayJson;
    assert.equal(json.params.format, v.format, "auto-detected in the replay too");
    assert.equal(json.requests, v.replayable);
    assert.equal(json.ok, v.replayable, JSON.stringify(json.verify_failure_samples));
    assert.equal(json.verify_failures, 0);
    assert.equal(json.errors, 0);
  });
}
