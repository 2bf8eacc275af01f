// The deployment files in deploy/ against the code they describe: every metric a Grafana
// panel queries exists in the registry of the process its job scrapes (node, Socket Cloning
// mode, dispatcher); the Prometheus targets use the admin ports the processes listen on; the
// systemd units pass `systemd-analyze verify` and their example arguments parse with the
// commands' own option specs; the keepalived configuration passes `keepalived -t` and sends GUE
// to the nodes' GUE port with health checks on their admin port.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { copyFile, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Registry } from "prom-client";
import { makeRoot, removeRoot, run, testNode } from "../server/node/testing.js";
import { ScTestCluster } from "../server/modes/sc-testing.js";
import { Forwarder } from "../dispatcher/forwarder.js";
import { DispatcherControl } from "../dispatcher/control.js";
import { createMetrics as dispatcherMetrics } from "../dispatcher/metrics.js";
import { DISPATCHER, Recorder, VIP } from "../dispatcher/testing.js";
import { DISPATCHER_ADMIN_PORT, GUE_PORT, HTTP_PORT, NODE_ADMIN_PORT } from "../cluster/plan.js";
import { parseCommand } from "../common/args.js";
import type { Command } from "../cli/command.js";

const DEPLOY = fileURLToPath(new URL("../../deploy/", import.meta.url));
const BIN = fileURLToPath(new URL("../../bin/sc-cluster.js", import.meta.url));

interface Panel {
  id: number;
  title: string;
  datasource: { uid: string };
  targets: { expr: string; refId: string }[];
}

/** Metric names a PromQL expression reads, with the job its selector names. */
function metricsOf(expr: string): { name: string; job: string | undefined }[] {
  const out: { name: string; job: string | undefined }[] = [];
  const re = /\b(sc_[a-z0-9_]+|process_[a-z0-9_]+|nodejs_[a-z0-9_]+)(\{[^}]*\})?/g;
  for (const m of expr.matchAll(re)) {
    const job = m[2] ? /job="([^"]+)"/.exec(m[2])?.[1] : undefined;
    out.push({ name: m[1]!, job });
  }
  return out;
}

/** Whether `name` is exposed by one of the registries (histograms as _bucket/_sum/_count). */
async function exposed(name: string, registries: Registry[]): Promise<boolean> {
  for (const r of registries) {
    const names = new Set((await r.getMetricsAsJSON()).map((m) => m.name));
    if (names.has(name)) return true;
    const base = name.replace(/_(bucket|sum|count)$/, "");
    if (
      base !== name &&
      (await r.getMetricsAsJSON()).some((m) => m.name === base && String(m.type) === "histogram")
    )
      return true;
  }
  return false;
}

/** Every panel's metric that its job's registries lack, as "panel: metric". */
async function missingMetrics(panels: Panel[], byJob: Record<string, Registry[]>): Promise<string[]> {
  const missing: string[] = [];
  for (const p of panels) {
    for (const t of p.targets) {
      const used = metricsOf(t.expr);
      if (used.length === 0) missing.push(`${p.title}: no metric in '${t.expr}'`);
      for (const { name, job } of used) {
        const registries = job === undefined ? undefined : byJob[job];
        if (registries === undefined) missing.push(`${p.title}: ${name} has no known job (${job})`);
        else if (!(await exposed(name, registries))) missing.push(`${p.title}: ${name} (job ${job})`);
      }
    }
  }
  return missing;
}

test("Grafana dashboard: every panel's metrics exist in the node's, the SC mode's or the dispatcher's registry", async () => {
  const dash = JSON.parse(await readFile(join(DEPLOY, "grafana/sc-cluster-dashboard.json"), "utf8")) as {
    uid: string;
    panels: Panel[];
    templating: { list: { name: string; type: string }[] };
  };
  assert.ok(dash.panels.length >= 10);
  assert.equal(new Set(dash.panels.map((p) => p.id)).size, dash.panels.length, "unique panel ids");
  assert.ok(dash.templating.list.some((v) => v.name === "datasource" && v.type === "datasource"));
  for (const p of dash.panels) {
    assert.equal(p.datasource.uid, "${datasource}", p.title);
    assert.ok(p.targets.length > 0, p.title);
  }
  const root = await makeRoot({ "a.txt": "a" });
  const logDir = await mkdtemp(join(tmpdir(), "sc-deploy-"));
  const node = await testNode({ root, accessLog: { path: join(logDir, "access.log"), format: "combined" } });
  const sc = await ScTestCluster.start({ nodes: 2, docs: {} });
  const forwarder = new Forwarder(
    { vip: VIP, port: 80, scheduler: "rr", encap: "ipv4", localAddr: DISPATCHER, maxConnections: 16 },
    new Recorder(),
  );
  const dispatcher = dispatcherMetrics(new DispatcherControl(forwarder));
  try {
    const byJob = { "sc-node": [node.registry, sc.nodes[0]!.registry], "sc-dispatcher": [dispatcher] };
    assert.deepEqual(await missingMetrics(dash.panels, byJob), []);
    // The request-duration and clone-latency histograms are both there (issue 18 item 6).
    const all = dash.panels.flatMap((p) => p.targets.map((t) => t.expr)).join("\n");
    assert.match(all, /sc_http_request_duration_seconds_bucket/);
    assert.match(all, /sc_clone_latency_seconds_bucket/);
    // The check itself catches a panel on a metric nobody exports, or on the wrong job.
    const bogus: Panel[] = [
      {
        id: 1,
        title: "x",
        datasource: { uid: "" },
        targets: [{ refId: "A", expr: 'rate(sc_nope_total{job="sc-node"}[1m])' }],
      },
      {
        id: 2,
        title: "y",
        datasource: { uid: "" },
        targets: [{ refId: "A", expr: 'sc_cache_bytes{job="sc-dispatcher"}' }],
      },
    ];
    assert.equal((await missingMetrics(bogus, byJob)).length, 2);
  } finally {
    await node.shutdown(100);
    await sc.close();
    await removeRoot(root);
    await rm(logDir, { recursive: true, force: true });
  }
});

test("Prometheus: the jobs the dashboard queries scrape the admin ports the processes listen on", async () => {
  const text = await readFile(join(DEPLOY, "prometheus/prometheus.yml"), "utf8");
  const jobs = [...text.matchAll(/- job_name: (\S+)/g)].map((m) => m[1]);
  assert.deepEqual(jobs, ["sc-node", "sc-dispatcher"]);
  const [nodeJob, dispatcherJob] = text.split(/- job_name: /).slice(1);
  const ports = (s: string) => [...s.matchAll(/^\s+- [\d.]+:(\d+)/gm)].map((m) => Number(m[1]));
  assert.ok(ports(nodeJob!).length >= 1 && ports(nodeJob!).every((p) => p === NODE_ADMIN_PORT));
  assert.ok(
    ports(dispatcherJob!).length >= 1 && ports(dispatcherJob!).every((p) => p === DISPATCHER_ADMIN_PORT),
  );
  assert.match(text, /metrics_path: \/metrics/);
  assert.doesNotMatch(text, /\t/, "YAML has no tabs");
});

async function commandSpec(name: string): Promise<Command> {
  return ((await import(`../cli/${name}.js`)) as { command: Command }).command;
}

/** The example arguments in a unit's comment (`#   SC_X_ARGS=...` and its continuation lines). */
function exampleArgs(unit: string, variable: string): string[] {
  const lines = unit.split("\n");
  const start = lines.findIndex((l) => l.startsWith(`#   ${variable}=`));
  assert.ok(start >= 0, `example ${variable} in the unit`);
  const parts = [lines[start]!.slice(`#   ${variable}=`.length)];
  for (let i = start + 1; i < lines.length && lines[i]!.startsWith("#     "); i++)
    parts.push(lines[i]!.slice(1));
  return parts.join(" ").trim().split(/\s+/);
}

test("systemd units: systemd-analyze verify passes, the example arguments parse, a broken unit is caught", async (t) => {
  const units = (await readdir(join(DEPLOY, "systemd"))).filter((f) => f.endsWith(".service")).sort();
  assert.deepEqual(units, ["sc-dispatcher.service", "sc-node.service", "sc-origin.service"]);
  for (const [unit, cmd, variable] of [
    ["sc-node.service", "node", "SC_NODE_ARGS"],
    ["sc-dispatcher.service", "dispatcher", "SC_DISPATCHER_ARGS"],
    ["sc-origin.service", "origin", "SC_ORIGIN_ARGS"],
  ] as const) {
    const text = await readFile(join(DEPLOY, "systemd", unit), "utf8");
    assert.match(text, new RegExp(`^ExecStart=/usr/local/bin/sc-cluster ${cmd} \\$${variable}$`, "m"));
    const args = exampleArgs(text, variable);
    const spec = (await commandSpec(cmd)).spec;
    assert.doesNotThrow(() => parseCommand(spec, args), `${unit}: ${args.join(" ")}`);
    // Admin ports in the examples are the ones the dashboards and Prometheus expect.
    for (const m of args.join(" ").matchAll(/admin[= ](?:http:\/\/)?[\d.]+:(\d+)/g)) {
      assert.equal(
        Number(m[1]),
        cmd === "dispatcher" && !m[0].includes("http") ? DISPATCHER_ADMIN_PORT : NODE_ADMIN_PORT,
      );
    }
  }
  if (!existsSync("/usr/bin/systemd-analyze")) {
    t.diagnostic("systemd-analyze is not installed: the units were checked for their commands only");
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), "sc-units-"));
  try {
    // verify checks that ExecStart's program exists: point it at this checkout's.
    for (const u of units) {
      const text = await readFile(join(DEPLOY, "systemd", u), "utf8");
      await writeFile(join(dir, u), text.replaceAll("/usr/local/bin/sc-cluster", BIN));
    }
    const ok = await run("systemd-analyze", ["verify", "--man=no", ...units.map((u) => join(dir, u))]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stderr.trim(), "", "no warnings");
    await copyFile(join(dir, "sc-node.service"), join(dir, "sc-broken.service"));
    const broken = (await readFile(join(dir, "sc-broken.service"), "utf8")).replace(
      "Restart=on-failure",
      "Restart=sometimes",
    );
    await writeFile(join(dir, "sc-broken.service"), broken);
    const bad = await run("systemd-analyze", ["verify", "--man=no", join(dir, "sc-broken.service")]);
    assert.match(bad.stderr, /restart specifier/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("keepalived + IPVS: GUE to the nodes' GUE port, health checks on their admin port, keepalived -t passes", async (t) => {
  const path = join(DEPLOY, "keepalived/keepalived.conf");
  const text = await readFile(path, "utf8");
  assert.match(text, new RegExp(`^\\s+lvs_method TUN type gue port ${GUE_PORT}$`, "m"));
  const servers = [
    ...text.matchAll(/real_server ([\d.]+) (\d+) \{[^]*?connect_ip ([\d.]+)\s+connect_port (\d+)/g),
  ];
  assert.equal(servers.length, 3);
  for (const [, ip, port, checkIp, checkPort] of servers) {
    assert.equal(Number(port), HTTP_PORT);
    assert.equal(checkIp, ip);
    assert.equal(Number(checkPort), NODE_ADMIN_PORT);
  }
  assert.match(text, /path \/healthz\s+status_code 200/);
  if (!existsSync("/usr/sbin/keepalived")) {
    t.diagnostic("keepalived is not installed: its configuration was checked by the patterns above only");
    return;
  }
  const r = await run("keepalived", ["-t", "-l", "-f", path]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal((r.stderr + r.stdout).trim(), "");
  // keepalived -t does reject what it does not understand (the old tun_type spelling, say).
  const dir = await mkdtemp(join(tmpdir(), "sc-keepalived-"));
  try {
    const bad = join(dir, "bad.conf");
    await writeFile(bad, text.replace(`type gue port ${GUE_PORT}`, `tun_type gue tun_port ${GUE_PORT}`));
    const b = await run("keepalived", ["-t", "-l", "-f", bad]);
    assert.notEqual(b.code, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
