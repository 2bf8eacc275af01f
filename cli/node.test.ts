// The `sc-cluster node` and `origin` commands as processes: help, clear errors, start, serve,
// SIGTERM/SIGINT shutdown.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import net from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { makeRoot, removeRoot, run } from "../server/node/testing.js";

const BIN = fileURLToPath(new URL("../../bin/sc-cluster.js", import.meta.url));
const cli = (...args: string[]) => run(process.execPath, [BIN, ...args]);

test("help node and node --help print the node's options (not the general help)", async () => {
  const viaHelp = await cli("help", "node");
  const viaFlag = await cli("node", "--help");
  assert.equal(viaHelp.code, 0);
  assert.equal(viaHelp.stdout, viaFlag.stdout);
  assert.match(viaHelp.stdout, /^Usage: sc-cluster node /);
  for (const opt of [
    "--access-log PATH|-",
    "--cache-control PATTERN=VALUE",
    "--precompressed br,gzip|none",
    "--not-found-page PATH",
  ]) {
    assert.ok(viaHelp.stdout.includes(opt), opt);
  }
  assert.match(viaHelp.stdout, /--admin ADDR:PORT +.*\[default: 127\.0\.0\.1:9080\]/);
  // An unknown command after help still gets the general help.
  const general = await cli("help", "nosuch");
  assert.match(general.stdout, /^Usage: sc-cluster <command>/);
});

test("node --help lists every option with its default", async () => {
  const r = await cli("node", "--help");
  assert.equal(r.code, 0);
  for (const opt of [
    "--stack kernel|user",
    "--vip ADDR",
    "--tun NAME",
    "--listen ADDR:PORT",
    "--root DIR",
    "--origin URL",
    "--admin ADDR:PORT",
    "--cache-bytes SIZE",
    "--cache-policy lru|lfu",
    "--mode local",
    "--node-id ID",
    "--header-timeout MS",
    "--idle-timeout MS",
    "--log-level LEVEL",
  ]) {
    assert.ok(r.stdout.includes(opt), opt);
  }
  assert.match(r.stdout, /\[default: 127\.0\.0\.1:8080\]/);
  assert.match(r.stdout, /\[default: 256M\]/);
  assert.match(r.stdout, /--stack kernel\|user +.*\[default: user\]/);
  // Every registered mode is offered, with the options of the cluster modes.
  assert.match(r.stdout, /--mode [a-z|-]*\bcf-lru\b/);
  assert.match(r.stdout, /--mode [a-z|-]*\bcf-lfu\b/);
  assert.match(r.stdout, /--peer-port PORT +.*\[default: 6082\]/);
});

test("clear errors: missing root, no source, bad option values, port in use", async () => {
  const missing = await cli(
    "node",
    "--root",
    "/nonexistent/sc-root",
    "--stack",
    "kernel",
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "none",
  );
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /document root '\/nonexistent\/sc-root' does not exist/);
  const none = await cli("node", "--listen", "127.0.0.1:0");
  assert.equal(none.code, 2);
  assert.match(none.stderr, /exactly one of --root DIR and --origin URL/);
  const policy = await cli("node", "--root", "/tmp", "--cache-policy", "fifo");
  assert.equal(policy.code, 2);
  assert.match(policy.stderr, /--cache-policy must be one of lru, lfu/);
  const size = await cli("node", "--root", "/tmp", "--cache-bytes", "lots");
  assert.equal(size.code, 2);
  assert.match(size.stderr, /--cache-bytes must be a byte size/);
  const grace = await cli("node", "--root", "/tmp", "--stack", "kernel", "--drain-grace", "soon");
  assert.equal(grace.code, 2);
  assert.match(grace.stderr, /--drain-grace/);

  const busy = net.createServer();
  await new Promise<void>((r) => busy.listen(0, "127.0.0.1", () => r()));
  try {
    const port = (busy.address() as net.AddressInfo).port;
    const inUse = await cli(
      "node",
      "--root",
      "/tmp",
      "--stack",
      "kernel",
      "--listen",
      `127.0.0.1:${port}`,
      "--admin",
      "none",
    );
    assert.equal(inUse.code, 1);
    assert.match(
      inUse.stderr,
      new RegExp(`cannot listen for HTTP on 127\\.0\\.0\\.1:${port}: address already in use`),
    );
    const adminInUse = await cli(
      "node",
      "--root",
      "/tmp",
      "--stack",
      "kernel",
      "--listen",
      "127.0.0.1:0",
      "--admin",
      `127.0.0.1:${port}`,
    );
    assert.equal(adminInUse.code, 1);
    assert.match(adminInUse.stderr, /cannot listen for the admin server .* address already in use/);
  } finally {
    busy.close();
  }
});

/** Starts a command and resolves with the first log line whose msg is `msg`. */
function startUntil(args: string[], msg: string) {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const lines = createInterface({ input: child.stdout! });
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    lines.on("line", (l) => {
      const rec = JSON.parse(l) as Record<string, unknown>;
      if (rec.msg === msg) resolve(rec);
    });
    child.on("exit", (code) => reject(new Error(`exited ${code} before '${msg}'`)));
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, ready, exited, lines };
}

test("node starts, serves, reports health, and exits cleanly on SIGTERM", async () => {
  const root = await makeRoot({ "a.txt": "cli\n" });
  const p = startUntil(
    [
      "node",
      "--root",
      root,
      "--stack",
      "kernel",
      "--listen",
      "127.0.0.1:0",
      "--admin",
      "127.0.0.1:0",
      "--node-id",
      "n1",
    ],
    "node listening",
  );
  try {
    const rec = await p.ready;
    const get = await run("curl", ["-s", "--max-time", "5", `http://${rec.listen}/a.txt`]);
    assert.equal(get.stdout, "cli\n");
    const health = await run("curl", ["-s", "--max-time", "5", `http://${rec.admin}/healthz`]);
    assert.deepEqual(JSON.parse(health.stdout), { status: "ok" });
    const metrics = await run("curl", ["-s", "--max-time", "5", `http://${rec.admin}/metrics`]);
    assert.match(metrics.stdout, /sc_http_requests_total\{code="200",node="n1"\} 1/);
    const stopped = new Promise<Record<string, unknown>>((resolve) =>
      p.lines.on("line", (l) => {
        const r = JSON.parse(l) as Record<string, unknown>;
        if (r.msg === "node stopped") resolve(r);
      }),
    );
    p.child.kill("SIGTERM");
    assert.equal(await p.exited, 0);
    assert.deepEqual((await stopped).requests, { "200": 1 });
  } finally {
    p.child.kill("SIGKILL");
    await removeRoot(root);
  }
});

test("origin starts, serves, and exits cleanly on SIGINT", async () => {
  const root = await makeRoot({ "o.txt": "origin\n" });
  const p = startUntil(["origin", "--root", root, "--listen", "127.0.0.1:0"], "origin listening");
  try {
    const rec = await p.ready;
    const get = await run("curl", ["-s", "--max-time", "5", `http://${rec.listen}/o.txt`]);
    assert.equal(get.stdout, "origin\n");
    p.child.kill("SIGINT");
    assert.equal(await p.exited, 0);
  } finally {
    p.child.kill("SIGKILL");
    await removeRoot(root);
  }
});

test("node --access-log: JSON lines, SIGUSR1 re-opens the file after logrotate moved it", async () => {
  const root = await makeRoot({ "a.txt": "cli\n" });
  const logDir = await makeRoot({});
  const log = join(logDir, "access.log");
  const p = startUntil(
    [
      "node",
      "--root",
      root,
      "--stack",
      "kernel",
      "--listen",
      "127.0.0.1:0",
      "--admin",
      "none",
      "--node-id",
      "n1",
      "--access-log",
      log,
      "--access-log-format",
      "json",
    ],
    "node listening",
  );
  try {
    const rec = await p.ready;
    const message = (msg: string) =>
      new Promise<void>((resolve) =>
        p.lines.on("line", (l) => {
          if ((JSON.parse(l) as { msg?: string }).msg === msg) resolve();
        }),
      );
    assert.equal(
      (await run("curl", ["-s", "--max-time", "5", `http://${rec.listen}/a.txt?before`])).stdout,
      "cli\n",
    );
    await rename(log, `${log}.1`);
    const reopening = message("SIGUSR1: re-opening the access log");
    p.child.kill("SIGUSR1");
    await reopening;
    assert.equal(
      (await run("curl", ["-s", "--max-time", "5", `http://${rec.listen}/a.txt?after`])).stdout,
      "cli\n",
    );
    p.child.kill("SIGTERM");
    assert.equal(await p.exited, 0);
    const urls = async (f: string) =>
      (await readFile(f, "utf8"))
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { url: string; node: string; status: number })
        .map((o) => `${o.node} ${o.status} ${o.url}`);
    assert.deepEqual(await urls(`${log}.1`), ["n1 200 /a.txt?before"]);
    assert.deepEqual(await urls(log), ["n1 200 /a.txt?after"]);
  } finally {
    p.child.kill("SIGKILL");
    await removeRoot(root);
    await removeRoot(logDir);
  }
});

test("node --access-log -: the lines go to standard output beside the node's own log", async () => {
  const root = await makeRoot({ "a.txt": "cli\n" });
  const p = startUntil(
    [
      "node",
      "--root",
      root,
      "--stack",
      "kernel",
      "--listen",
      "127.0.0.1:0",
      "--admin",
      "none",
      "--node-id",
      "n2",
      "--access-log",
      "-",
      "--access-log-format",
      "json",
    ],
    "node listening",
  );
  try {
    const access: { url: string; status: number; node: string }[] = [];
    p.lines.on("line", (l) => {
      const o = JSON.parse(l) as { url?: string; status: number; node: string };
      if (o.url !== undefined) access.push({ url: o.url, status: o.status, node: o.node });
    });
    const rec = await p.ready;
    await run("curl", [
      "-s",
      "--max-time",
      "5",
      `http://${rec.listen}/a.txt`,
      `http://${rec.listen}/missing`,
    ]);
    const drained = new Promise((resolve) => p.lines.once("close", resolve));
    p.child.kill("SIGTERM");
    assert.equal(await p.exited, 0);
    await drained; // 'exit' can come before the last of standard output is read
    assert.deepEqual(access, [
      { url: "/a.txt", status: 200, node: "n2" },
      { url: "/missing", status: 404, node: "n2" },
    ]);
  } finally {
    p.child.kill("SIGKILL");
    await removeRoot(root);
  }
});
