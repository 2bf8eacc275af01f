// Issue 23 through the VIP: a site root with a file per printable ASCII character but "/" (and
// some UTF-8 names), one cluster per mode (local, sc, cf-lru; nodes on --origin). From the client
// host, every spelling of every name (raw where RFC 3986 allows it, canonical, %XX in either hex
// case) must be answered 200 with the origin's bytes and ETag, and no spelling of a climb, an
// encoded "/" or a NUL may be served. In cf-lru, every spelling of a name is one cache key and
// one home: the origin is asked once per name. Needs root, /dev/net/tun and namespaces.
import { after, before, test } from "node:test";
import { createHash } from "node:crypto";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { withCluster, type Cluster } from "../../cluster/index.js";
import { testPrefix } from "../../testbed/index.js";
import { encodePath, normalizePath } from "../http/url-path.js";
import { nameCases, refusedSpellings } from "../http/url-path-testing.js";
import type { ProbeAnswer } from "../http/raw-get-main.js";

const PROBE = fileURLToPath(new URL("../http/raw-get-main.js", import.meta.url));
const SECRET = "secret.txt";
const SECRET_SHA = createHash("sha256").update("classified\n").digest("hex");
const cases = nameCases();
let dir: string;
let root: string;

/** Each file's content names it, so a wrong file is seen as wrong bytes. */
const contentOf = (file: string) => `file ${JSON.stringify(file)}\n`;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "sc-paths-site-"));
  root = join(dir, "root");
  await mkdir(root);
  await writeFile(join(dir, SECRET), "classified\n");
  for (const { file } of cases) await writeFile(join(root, file), contentOf(file));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** GETs every target from the client host, exactly as spelled. */
async function probe(c: Cluster, url: string, targets: string[]): Promise<ProbeAnswer[]> {
  const u = new URL(url);
  const r = await c.testbed.exec("client", process.execPath, [PROBE, u.hostname, u.port || "80"], {
    input: JSON.stringify(targets),
    timeoutMs: 120_000,
    check: false,
  });
  assert.equal(r.code, 0, `probe failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as ProbeAnswer[];
}

async function sumMetric(c: Cluster, name: string): Promise<number> {
  let total = 0;
  for (const n of c.nodes) {
    for (const line of (await c.metrics(n)).split("\n")) {
      if (line.startsWith(name + " ") || line.startsWith(name + "{"))
        total += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return total;
}

async function checkMode(mode: string): Promise<void> {
  await withCluster(
    { prefix: testPrefix(`p${mode.slice(0, 2)}`), nodes: 3, mode, site: root, scheduler: "rr" },
    async (c) => {
      // The origin's own answers to the canonical spellings: the reference bytes and ETags.
      const canonical = cases.map(({ file }) => encodePath("/" + file));
      const fromOrigin = await probe(c, c.originUrl, canonical);
      const reference = new Map<string, ProbeAnswer>();
      fromOrigin.forEach((a, i) => {
        assert.equal(a.status, 200, `origin ${a.target}: ${a.status} ${a.error ?? ""}`);
        assert.equal(a.bytes, Buffer.byteLength(contentOf(cases[i]!.file)), a.target);
        reference.set(cases[i]!.file, a);
      });

      // Every spelling through the VIP, all characters in one pass.
      const loadsBefore = await sumMetric(c, "sc_source_loads_total");
      const targets: { target: string; file: string }[] = [];
      for (const { file, spellings } of cases) for (const s of spellings) targets.push({ target: s, file });
      const answers = await probe(
        c,
        c.vipUrl,
        targets.map((t) => t.target),
      );
      const wrong: string[] = [];
      answers.forEach((a, i) => {
        const want = reference.get(targets[i]!.file)!;
        if (a.status !== 200 || a.sha256 !== want.sha256 || a.etag !== want.etag)
          wrong.push(`${a.target} -> ${a.status} ${a.etag ?? a.error ?? ""} (origin ${want.etag})`);
      });
      assert.deepEqual(
        wrong,
        [],
        `${mode}: ${wrong.length} of ${answers.length} spellings not served as the origin serves them`,
      );

      if (mode === "cf-lru") {
        // Every name was asked for by 2-4 spellings over 3 nodes: one key and one home each,
        // so the cluster loaded each name from the origin once.
        const loads = (await sumMetric(c, "sc_source_loads_total")) - loadsBefore;
        assert.equal(loads, cases.length, "cf-lru loads from the origin");
      }

      // Traversal spellings: a client error from the mapping, never the file above the root.
      const refused = await probe(c, c.vipUrl, refusedSpellings(SECRET));
      for (const a of refused) {
        const norm = normalizePath(a.target);
        assert.equal(a.status, norm.ok ? 404 : norm.status, `${mode} ${a.target}`);
        assert.notEqual(a.sha256, SECRET_SHA, `${mode} ${a.target}`);
      }
    },
  );
}

for (const mode of ["local", "sc", "cf-lru"]) {
  test(`${mode}: every spelling of every file name through the VIP, as the origin serves it`, () =>
    checkMode(mode));
}
