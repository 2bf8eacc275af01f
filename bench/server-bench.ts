// Benchmark (not a test): one sc-cluster node vs nginx serving the same 1 KiB and 100 KiB files
// over keep-alive connections, measured with wrk (or autocannon on loopback). Prints requests/s,
// MB/s and ratios to nginx; --json FILE writes the figures.
//
//   npm run build && node dist/bench/server-bench.js [--duration 5] [--repeat 3] [--connections 50]
//       [--threads 1] [--tool wrk|autocannon] [--nginx-workers 1] [--json out.json]
//   node dist/bench/server-bench.js --testbed ...   (root: namespaces and a TUN)
//
// Loopback: our node on node:net and nginx on 127.0.0.1. --testbed: a one-node testbed over an
// unshaped link; in node1 run our node on our own stack (the VIP through the TUN), our node on
// node:net and nginx (both on node1's LAN address); wrk runs in the client namespace.
// Bounded: each run lasts --duration seconds. Starts only its own processes (our nodes, an nginx
// master with a config written to a temp dir, the testbed) and stops exactly those.
import { spawn, type ChildProcess } from "node:child_process";
import { chmod, mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createTestbed, testPrefix, type Testbed } from "../testbed/index.js";
import { nodeIp, VIP } from "../testbed/topology.js";
import { exec, freePort } from "./support.js";

const { values: opts } = parseArgs({
  options: {
    duration: { type: "string", default: "5" },
    connections: { type: "string", default: "50" },
    threads: { type: "string", default: "1" },
    tool: { type: "string", default: "wrk" },
    "nginx-workers": { type: "string", default: "1" },
    repeat: { type: "string", default: "3" },
    testbed: { type: "boolean", default: false },
    json: { type: "string" },
  },
});
const DURATION = Number(opts.duration);
const CONNS = Number(opts.connections);
const THREADS = Number(opts.threads);
const REPEAT = Number(opts.repeat);
const BIN = fileURLToPath(new URL("../../bin/sc-cluster.js", import.meta.url));
const FILES = [
  { name: "1k.bin", size: 1024 },
  { name: "100k.bin", size: 100 * 1024 },
];

interface Result {
  server: string;
  file: string;
  rps: number;
  mbps: number;
  errors: number;
}

async function waitForPort(port: number, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1", () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listening on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs a command on this host, or in a testbed host's namespace. */
function spawnIn(tb: Testbed | null, cmd: string, args: string[], stdout: "pipe" | "ignore"): ChildProcess {
  const stdio: ["ignore", "pipe" | "ignore", "inherit"] = ["ignore", stdout, "inherit"];
  return tb ? tb.spawn("node1", cmd, args, { stdio }) : spawn(cmd, args, { stdio });
}

/** Polls `url` from the client namespace until something answers (any HTTP status). */
async function waitForUrl(tb: Testbed, url: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const r = await tb.exec("client", "curl", ["-s", "-o", "/dev/null", "--max-time", "1", url], {
      check: false,
    });
    if (r.code === 0) return;
    if (Date.now() > until) throw new Error(`nothing answers at ${url}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

async function startOurs(
  tb: Testbed | null,
  root: string,
  stackArgs: string[],
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawnIn(
    tb,
    process.execPath,
    [BIN, "node", "--root", root, ...stackArgs, "--admin", "none", "--node-id", "bench"],
    "pipe",
  );
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (l) => {
      const rec = JSON.parse(l) as { msg?: string; listen?: string };
      if (rec.msg === "node listening") resolve(Number(rec.listen!.split(":")[1]));
    });
    child.on("exit", (code) => reject(new Error(`sc-cluster node exited ${code}`)));
  });
  return { child, port };
}

async function startNginx(
  tb: Testbed | null,
  dir: string,
  root: string,
  host: string,
  fixedPort?: number,
): Promise<{ child: ChildProcess; port: number }> {
  const port = fixedPort ?? (await freePort());
  for (const d of ["tmp", "logs"]) await mkdir(join(dir, d), { recursive: true });
  const conf = join(dir, "nginx.conf");
  await writeFile(
    conf,
    `daemon off;
worker_processes ${opts["nginx-workers"]};
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  open_file_cache max=1000;
  tcp_nodelay on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  server {
    listen ${host}:${port};
    root ${root};
  }
}
`,
  );
  const child = spawnIn(tb, "nginx", ["-p", dir, "-c", conf], "ignore");
  if (tb) await waitForUrl(tb, `http://${host}:${port}/`);
  else await waitForPort(port);
  return { child, port };
}

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

async function load(
  tb: Testbed | null,
  url: string,
  seconds: number,
): Promise<{ rps: number; mbps: number; errors: number }> {
  if (opts.tool === "autocannon" && !tb) {
    const { default: autocannon } = await import("autocannon");
    // Without a callback autocannon returns a promise of its result (the typings miss that overload).
    const run = autocannon as unknown as (o: object) => Promise<{
      requests: { average: number };
      throughput: { average: number };
      errors: number;
      timeouts: number;
      non2xx: number;
    }>;
    const r = await run({ url, connections: CONNS, duration: seconds, pipelining: 1 });
    return {
      rps: r.requests.average,
      mbps: r.throughput.average / 1e6,
      errors: r.errors + r.timeouts + r.non2xx,
    };
  }
  const wrk = ["wrk", `-t${THREADS}`, `-c${CONNS}`, `-d${seconds}s`, url];
  const argv = tb ? tb.command("client", wrk[0]!, wrk.slice(1)) : wrk;
  const out = await exec(argv[0]!, argv.slice(1));
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const t = /Transfer\/sec:\s+([\d.]+)(KB|MB|GB)/.exec(out);
  const mbps = t
    ? Number(t[1]) * { KB: 1 / 1024, MB: 1, GB: 1024 }[t[2] as "KB" | "MB" | "GB"] * 1.048576
    : NaN;
  const errLine = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const errors = (errLine ? errLine.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + non2xx;
  return { rps, mbps, errors };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "sc-server-bench-"));
  const root = join(dir, "www");
  await mkdir(root);
  await chmod(dir, 0o755); // nginx workers run as an unprivileged user
  for (const f of FILES) await writeFile(join(root, f.name), Buffer.alloc(f.size, "x"));
  const results: Result[] = [];
  const started: { child: ChildProcess; signal: NodeJS.Signals }[] = [];
  let tb: Testbed | null = null;
  try {
    const servers: { name: string; base: string }[] = [];
    if (opts.testbed) {
      tb = createTestbed({ prefix: testPrefix("b"), nodes: 1, vipHost: "node1" });
      await tb.up();
      const ip = nodeIp(1);
      const user = await startOurs(tb, root, ["--stack", "user", "--vip", VIP, "--port", "80"]);
      started.push({ child: user.child, signal: "SIGTERM" });
      const kernel = await startOurs(tb, root, ["--stack", "kernel", "--listen", `${ip}:8080`]);
      started.push({ child: kernel.child, signal: "SIGTERM" });
      const nginx = await startNginx(tb, dir, root, ip, 8081);
      started.push({ child: nginx.child, signal: "SIGQUIT" });
      servers.push(
        { name: "sc-cluster (user stack)", base: `http://${VIP}` },
        { name: "sc-cluster (kernel stack)", base: `http://${ip}:8080` },
        { name: "nginx", base: `http://${ip}:8081` },
      );
    } else {
      const ours = await startOurs(null, root, ["--stack", "kernel", "--listen", "127.0.0.1:0"]);
      started.push({ child: ours.child, signal: "SIGTERM" });
      const nginx = await startNginx(null, dir, root, "127.0.0.1");
      started.push({ child: nginx.child, signal: "SIGQUIT" });
      servers.push(
        { name: "sc-cluster (kernel stack)", base: `http://127.0.0.1:${ours.port}` },
        { name: "nginx", base: `http://127.0.0.1:${nginx.port}` },
      );
    }
    for (const f of FILES) {
      for (const s of servers) await load(tb, `${s.base}/${f.name}`, 1); // warm-up
      // Alternate the servers run by run so drift in machine load hits both alike; keep the median.
      const runs = new Map<string, { rps: number; mbps: number; errors: number }[]>();
      for (let i = 0; i < REPEAT; i++) {
        for (const s of servers) {
          const r = await load(tb, `${s.base}/${f.name}`, DURATION);
          runs.set(s.name, [...(runs.get(s.name) ?? []), r]);
          console.error(
            `${s.name.padEnd(26)} ${f.name.padEnd(9)} run ${i + 1}: ${r.rps.toFixed(0).padStart(8)} req/s ${r.mbps.toFixed(1).padStart(8)} MB/s  errors ${r.errors}`,
          );
        }
      }
      for (const s of servers) {
        const rs = runs.get(s.name)!.sort((a, b) => a.rps - b.rps);
        const med = rs[Math.floor(rs.length / 2)]!;
        results.push({ server: s.name, file: f.name, ...med, errors: rs.reduce((n, r) => n + r.errors, 0) });
      }
    }
  } finally {
    for (const p of started.reverse()) await stop(p.child, p.signal);
    await tb?.down();
    await rm(dir, { recursive: true, force: true });
  }
  const nginxVersion = (await exec("nginx", ["-v"]).catch((e: Error) => e.message))
    .trim()
    .replace("nginx version: ", "");
  const where = opts.testbed ? "testbed (client namespace -> node1, unshaped veth)" : "loopback";
  console.log(
    `\nserver-bench: ${where}, ${opts.tool === "autocannon" && !opts.testbed ? "autocannon" : `wrk -t${THREADS}`} -c${CONNS}, ` +
      `median of ${REPEAT} runs of ${DURATION}s, keep-alive; ${nginxVersion}, worker_processes ${opts["nginx-workers"]}\n`,
  );
  const names = [...new Set(results.map((r) => r.server))];
  console.log(
    `| file | ${names.map((n) => `${n} req/s`).join(" | ")} | ${names
      .filter((n) => n !== "nginx")
      .map((n) => `${n} / nginx`)
      .join(" | ")} |`,
  );
  console.log(
    `| --- |${names.map(() => " ---: |").join("")}${names
      .filter((n) => n !== "nginx")
      .map(() => " ---: |")
      .join("")}`,
  );
  for (const f of FILES) {
    const row = (n: string) => results.find((r) => r.file === f.name && r.server === n)!;
    const ng = row("nginx").rps;
    console.log(
      `| ${f.name} | ${names.map((n) => row(n).rps.toFixed(0)).join(" | ")} | ${names
        .filter((n) => n !== "nginx")
        .map((n) => (row(n).rps / ng).toFixed(2))
        .join(" | ")} |`,
    );
  }
  if (opts.json) {
    await writeFile(
      opts.json,
      JSON.stringify(
        { tool: opts.tool, connections: CONNS, threads: THREADS, duration: DURATION, nginxVersion, results },
        null,
        2,
      ),
    );
  }
  if (results.some((r) => r.errors > 0)) {
    console.error("server-bench: some runs had errors");
    process.exitCode = 1;
  }
}

await main();
