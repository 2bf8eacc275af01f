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
import { comparisonTable, medianRun, parseWrk, type Measured, type Result } from "./server-bench-figures.js";
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

async function load(tb: Testbed | null, url: string, seconds: number): Promise<Measured> {
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
  return parseWrk(await exec(argv[0]!, argv.slice(1)));
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "sc-server-bench-"));
  const root = await writeFiles(dir);
  const procs = new Processes();
  let results: Result[];
  try {
    const servers = opts.testbed
      ? await startOnTestbed(procs, dir, root)
      : await startOnLoopback(procs, dir, root);
    results = await measureAll(procs.tb, servers);
  } finally {
    await procs.stopAll();
    await rm(dir, { recursive: true, force: true });
  }
  await report(results);
}

/** The served files, in `dir`/www. */
async function writeFiles(dir: string): Promise<string> {
  const root = join(dir, "www");
  await mkdir(root);
  await chmod(dir, 0o755); // nginx workers run as an unprivileged user
  for (const f of FILES) await writeFile(join(root, f.name), Buffer.alloc(f.size, "x"));
  return root;
}

/** A server to measure: its name in the report and its base URL. */
interface Server {
  name: string;
  base: string;
}

/** What the benchmark started (its servers and the testbed), stopped in reverse order at the end. */
class Processes {
  private readonly started: { child: ChildProcess; signal: NodeJS.Signals }[] = [];
  tb: Testbed | null = null;

  add(child: ChildProcess, signal: NodeJS.Signals): void {
    this.started.push({ child, signal });
  }

  async stopAll(): Promise<void> {
    for (const p of this.started.reverse()) await stop(p.child, p.signal);
    await this.tb?.down();
  }
}

/** A one-node testbed: in node1, our node on our own stack and on node:net, and nginx. */
async function startOnTestbed(procs: Processes, dir: string, root: string): Promise<Server[]> {
  const tb = createTestbed({ prefix: testPrefix("b"), nodes: 1, vipHost: "node1" });
  procs.tb = tb;
  await tb.up();
  const ip = nodeIp(1);
  const user = await startOurs(tb, root, ["--stack", "user", "--vip", VIP, "--port", "80"]);
  procs.add(user.child, "SIGTERM");
  const kernel = await startOurs(tb, root, ["--stack", "kernel", "--listen", `${ip}:8080`]);
  procs.add(kernel.child, "SIGTERM");
  const nginx = await startNginx(tb, dir, root, ip, 8081);
  procs.add(nginx.child, "SIGQUIT");
  return [
    { name: "sc-cluster (user stack)", base: `http://${VIP}` },
    { name: "sc-cluster (kernel stack)", base: `http://${ip}:8080` },
    { name: "nginx", base: `http://${ip}:8081` },
  ];
}

/** On loopback: our node on node:net and nginx. */
async function startOnLoopback(procs: Processes, dir: string, root: string): Promise<Server[]> {
  const ours = await startOurs(null, root, ["--stack", "kernel", "--listen", "127.0.0.1:0"]);
  procs.add(ours.child, "SIGTERM");
  const nginx = await startNginx(null, dir, root, "127.0.0.1");
  procs.add(nginx.child, "SIGQUIT");
  return [
    { name: "sc-cluster (kernel stack)", base: `http://127.0.0.1:${ours.port}` },
    { name: "nginx", base: `http://127.0.0.1:${nginx.port}` },
  ];
}

/** Every file from every server: a warm-up, then REPEAT runs each; the median run per server and file. */
async function measureAll(tb: Testbed | null, servers: Server[]): Promise<Result[]> {
  const results: Result[] = [];
  for (const f of FILES) {
    for (const s of servers) await load(tb, `${s.base}/${f.name}`, 1); // warm-up
    // Alternate the servers run by run so drift in machine load hits both alike; keep the median.
    const runs = new Map<string, Measured[]>();
    for (let i = 0; i < REPEAT; i++) {
      for (const s of servers) {
        const r = await load(tb, `${s.base}/${f.name}`, DURATION);
        runs.set(s.name, [...(runs.get(s.name) ?? []), r]);
        console.error(
          `${s.name.padEnd(26)} ${f.name.padEnd(9)} run ${i + 1}: ${r.rps.toFixed(0).padStart(8)} req/s ${r.mbps.toFixed(1).padStart(8)} MB/s  errors ${r.errors}`,
        );
      }
    }
    for (const s of servers) results.push(medianRun(s.name, f.name, runs.get(s.name) ?? []));
  }
  return results;
}

/** The table against nginx, the JSON if asked, and exit code 1 if any run had errors. */
async function report(results: Result[]): Promise<void> {
  const nginxVersion = (await exec("nginx", ["-v"]).catch((e: Error) => e.message))
    .trim()
    .replace("nginx version: ", "");
  const where = opts.testbed ? "testbed (client namespace -> node1, unshaped veth)" : "loopback";
  console.log(
    `\nserver-bench: ${where}, ${opts.tool === "autocannon" && !opts.testbed ? "autocannon" : `wrk -t${THREADS}`} -c${CONNS}, ` +
      `median of ${REPEAT} runs of ${DURATION}s, keep-alive; ${nginxVersion}, worker_processes ${opts["nginx-workers"]}\n`,
  );
  for (const line of comparisonTable(
    results,
    FILES.map((f) => f.name),
  ))
    console.log(line);
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
