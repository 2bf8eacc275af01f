// The dashboard in a real browser against a real cluster: startCluster (4 nodes, mode sc, the
// demo site) and startDashboard on 127.0.0.1 with an ephemeral port, opened in Debian's
// chromium (headless, driven by playwright-core). The page loads and shows the 4 nodes; a click
// on the replay button runs a verified replay from the client host, the clone counter rises
// (awaited as an event in the page, no sleeping), the replay ends verified. Screenshots go to
// .test-artifacts/ (gitignored). Needs root, /dev/net/tun and /usr/bin/chromium.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type BrowserContext } from "playwright-core";
import { testPrefix } from "../../testbed/index.js";
import { withCluster } from "../cluster.js";
import { startDashboard } from "./server.js";
import { CHROMIUM, CHROMIUM_ARGS } from "../browser-testing.js";

const ARTIFACTS = fileURLToPath(new URL("../../../.test-artifacts/", import.meta.url));
const NODES = 4;

/** Sum of a counter over every node's /metrics. */
async function metricSum(metrics: string[], name: string): Promise<number> {
  let sum = 0;
  for (const text of metrics)
    for (const line of text.split("\n"))
      if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.split(" ").pop());
  return sum;
}

test(
  "dashboard in headless chromium: 4 nodes, a verified replay from the button, clones rising",
  { timeout: 180_000 },
  async () => {
    assert.ok(
      existsSync(CHROMIUM),
      `${CHROMIUM} is missing: scripts/setup-host.sh installs Debian's chromium`,
    );
    await withCluster(
      { prefix: testPrefix("dsh"), nodes: NODES, mode: "sc", cacheBytes: "64M", stopGraceMs: 2000 },
      async (c) => {
        const dashboard = await startDashboard({ cluster: c, host: "127.0.0.1", port: 0 });
        const profile = await mkdtemp(join(tmpdir(), "sc-dashboard-chromium-"));
        let browser: BrowserContext | undefined;
        try {
          // status --json names it while it is served.
          await c.setDashboard(dashboard.url);
          assert.equal((await c.status()).dashboard, dashboard.url);

          browser = await chromium.launchPersistentContext(profile, {
            executablePath: CHROMIUM,
            headless: true,
            args: CHROMIUM_ARGS,
            viewport: { width: 1400, height: 900 },
          });
          const page = await browser.newPage();
          const problems: string[] = [];
          page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
          page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`));
          page.on("response", (r) => {
            if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
          });

          await page.goto(dashboard.url);
          await page.waitForSelector("#connection[data-state=live]", { timeout: 15_000 });
          assert.deepEqual(await page.locator("#nodes tbody td[data-stat=host]").allTextContents(), c.nodes);
          assert.equal(await page.locator("#topology .node").count(), NODES);
          assert.match((await page.textContent("#summary")) ?? "", /4 nodes, mode sc/);
          // (Page functions are strings: this program's TypeScript has no DOM types.)
          await page.waitForFunction(`document.querySelector("#total-requests").textContent !== ""`, null, {
            timeout: 15_000,
          });
          const counter = async () =>
            Number(((await page.textContent("#total-clones-sent")) ?? "").replace(/,/g, ""));
          const before = await counter();
          assert.ok(Number.isInteger(before), `clone counter shows a number (${before})`);

          assert.equal(await page.isEnabled("#replay-start"), true);
          await page.click("#replay-start");
          // The counter rises while the replay runs (the page gets a snapshot per second).
          await page.waitForFunction(
            `Number(document.querySelector("#total-clones-sent").textContent.replace(/,/g, "")) > ${before}`,
            null,
            { timeout: 60_000 },
          );
          // A picture of the replay in full swing (docs/dashboard.png): a few hundred clones in,
          // or whatever there is when it ends first.
          await page.waitForFunction(
            `Number(document.querySelector("#total-clones-sent").textContent.replace(/,/g, "")) > ${before + 300}
             || document.querySelector("#replay-status").dataset.state !== "running"`,
            null,
            { timeout: 60_000 },
          );
          await mkdir(ARTIFACTS, { recursive: true });
          await page.screenshot({ path: join(ARTIFACTS, "dashboard-replaying.png"), fullPage: true });
          await page.waitForSelector("#replay-status[data-state=ok], #replay-status[data-state=failed]", {
            timeout: 60_000,
          });
          const result = (await page.textContent("#replay-status")) ?? "";
          assert.equal(await page.getAttribute("#replay-status", "data-state"), "ok", result);
          assert.match(result, / 0 verification failures, 0 errors/);
          assert.match(result, /the nodes sent [\d,]+ clones meanwhile/);
          await page.screenshot({ path: join(ARTIFACTS, "dashboard.png"), fullPage: true });

          // What the page counted is what the nodes count themselves.
          const shown = await counter();
          const metrics = await Promise.all(c.nodes.map((n) => c.metrics(n)));
          const sent = await metricSum(metrics, "sc_clones_sent_total");
          assert.ok(shown > before && shown <= sent, `page ${shown}, nodes ${sent}, before ${before}`);
          assert.ok((await metricSum(metrics, "sc_clones_received_total")) > 0);
          assert.deepEqual(problems, []);
          console.log(
            `dashboard test: clones ${before} -> ${shown} on the page (${sent} in the nodes' metrics); ${result}`,
          );
        } finally {
          await browser?.close();
          await dashboard.close();
          await rm(profile, { recursive: true, force: true });
        }
      },
    );
  },
);
