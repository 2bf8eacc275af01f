// A browser over HTTPS with TLS session cloning: headless Chromium in the client host, trusting
// the cluster's demo CA through its NSS database (certutil), loads a page from the VIP of a
// 4-node --mode sc cluster; the page fetches 50 resources one after another on its keep-alive
// HTTP/1.1 connection and checks each one's length and SHA-256. Most are homed on other nodes
// than the one the connection reached: their responses come from those nodes, sealed in the
// browser's TLS session. Needs root, /dev/net/tun, /usr/bin/chromium and certutil.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { testPrefix } from "../testbed/index.js";
import { withCluster, type Cluster } from "./cluster.js";
import { CHROMIUM, CHROMIUM_ARGS } from "./browser-testing.js";

const RESOURCES = 50;

/** The page: fetches every resource in turn (so one connection serves them) and verifies it. */
function page(resources: { path: string; size: number; sha: string }[]): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>loading</title></head><body>
<script>
const resources = ${JSON.stringify(resources)};
(async () => {
  const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");
  let ok = 0;
  const bad = [];
  for (const r of resources) {
    const res = await fetch(r.path, { cache: "no-store" });
    const body = await res.arrayBuffer();
    const sha = hex(await crypto.subtle.digest("SHA-256", body));
    if (res.status === 200 && body.byteLength === r.size && sha === r.sha) ok++;
    else bad.push(r.path + " " + res.status + " " + body.byteLength);
  }
  document.title = "done " + ok;
  document.body.dataset.bad = bad.join("; ");
})().catch((e) => { document.title = "failed " + e; });
</script></body></html>`;
}

async function makeSite(dir: string): Promise<void> {
  await mkdir(join(dir, "r"), { recursive: true });
  const resources: { path: string; size: number; sha: string }[] = [];
  for (let i = 0; i < RESOURCES; i++) {
    // 5-60 KB: above the nodes' 4 KiB local-serving size, so every remote one is cloned.
    const body = randomBytes(5000 + ((i * 7919) % 55_000));
    const path = `/r/${String(i).padStart(2, "0")}.bin`;
    await writeFile(join(dir, path), body);
    resources.push({ path, size: body.length, sha: createHash("sha256").update(body).digest("hex") });
  }
  await writeFile(join(dir, "index.html"), page(resources));
}

/** A counter summed over the nodes (every label set). */
async function sum(c: Cluster, name: string, label = ""): Promise<number> {
  let total = 0;
  for (const n of c.nodes)
    for (const line of (await c.metrics(n)).split("\n"))
      if ((line.startsWith(`${name} `) || line.startsWith(`${name}{`)) && line.includes(label))
        total += Number(line.split(" ").pop());
  return total;
}

/**
 * An NSS database in `home` that trusts `caCert` for TLS servers (Chromium on Linux reads
 * $HOME/.pki/nssdb), and a launcher that runs Chromium in the client host with that HOME.
 */
async function browserIn(c: Cluster, home: string, caCert: string): Promise<string> {
  const db = join(home, ".pki", "nssdb");
  await mkdir(db, { recursive: true });
  execFileSync("certutil", ["-d", `sql:${db}`, "-N", "--empty-password"]);
  execFileSync("certutil", ["-d", `sql:${db}`, "-A", "-t", "C,,", "-n", "sc-cluster demo CA", "-i", caCert]);
  const launcher = join(home, "chromium-in-client");
  const ns = c.testbed.host("client").netns;
  await writeFile(launcher, `#!/bin/sh\nexec ip netns exec ${ns} env HOME=${home} ${CHROMIUM} "$@"\n`);
  await chmod(launcher, 0o755);
  return launcher;
}

test(
  "Chromium trusting the demo CA loads 50 resources over one HTTPS connection, most of them cloned with its TLS session",
  { timeout: 180_000 },
  async (t) => {
    assert.ok(
      existsSync(CHROMIUM),
      `${CHROMIUM} is missing: scripts/setup-host.sh installs Debian's chromium`,
    );
    const work = await mkdtemp(join(tmpdir(), "sc-tls-browser-"));
    const site = join(work, "site");
    await makeSite(site);
    try {
      await withCluster(
        { prefix: testPrefix("tbr"), nodes: 4, mode: "sc", site, scheduler: "rr", stopGraceMs: 2000 },
        async (c) => {
          const tls = c.tls!;
          const launcher = await browserIn(c, join(work, "home"), tls.caCert);
          const before = {
            cloned: await sum(c, "sc_tls_clones_total", 'side="sent"'),
            sessions: await sum(c, "sc_tls_takeovers_total"),
            requests: await sum(c, "sc_http_requests_total"),
          };
          let browser: BrowserContext | undefined;
          try {
            browser = await chromium.launchPersistentContext(join(work, "profile"), {
              executablePath: launcher,
              headless: true,
              args: CHROMIUM_ARGS,
            });
            const tab = await browser.newPage();
            const problems: string[] = [];
            tab.on("requestfailed", (r) =>
              problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`),
            );
            // No certificate error: the CA is trusted, not the error ignored.
            await tab.goto(`${tls.url}index.html`);
            await tab.waitForFunction(`document.title !== "loading"`, null, { timeout: 120_000 });
            const title = await tab.title();
            const bad = await tab.evaluate(`document.body.dataset.bad`);
            assert.equal(title, `done ${RESOURCES}`, `every resource byte-exact (bad: ${String(bad)})`);
            assert.deepEqual(problems, []);
          } finally {
            await browser?.close();
          }
          const cloned = (await sum(c, "sc_tls_clones_total", 'side="sent"')) - before.cloned;
          const sessions = (await sum(c, "sc_tls_takeovers_total")) - before.sessions;
          const requests = (await sum(c, "sc_http_requests_total")) - before.requests;
          t.diagnostic(
            `TLS sessions ${sessions}, requests ${requests}, cloned ${cloned} (${Math.round((100 * cloned) / requests)}%)`,
          );
          // The page and its resources on one connection (Chromium may open a spare one).
          assert.ok(sessions >= 1 && sessions <= 2, `TLS sessions: ${sessions}`);
          assert.equal(await sum(c, "sc_tls_takeover_failures_total"), 0);
          // 4 nodes: about 3/4 of the resources are homed elsewhere than the entry node.
          assert.ok(cloned >= RESOURCES / 2, `cloned ${cloned} of ${requests} requests`);
          assert.equal(await sum(c, "sc_clone_failures_total", 'reason="refused"'), 0);
        },
      );
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  },
);
