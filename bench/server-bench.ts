// Benchmark (not a test): one sc-cluster node vs nginx on loopback, both serving the same 1 KiB
// and 100 KiB files over keep-alive connections, measured with wrk (or autocannon). Prints
// requests/s, MB/s and our/nginx ratios; --json FILE writes the figures.
//
//   npm run build && node dist/bench/server-bench.js [--duration 5] [--repeat 3] [--connections 50]
//       [--threads 1] [--tool wrk|autocannon] [--nginx-workers 1] [--json out.json]
//
// Bounded: each run lasts --duration seconds. Starts only its own processes (our node, an nginx
// master with a config written to a temp dir) and stops exactly those PIDs.
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { chmod, mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values: opts } = parseArgs({
  options: {
    duration: { type: "string", default: "5" },
    connections: { type: "string", default: "50" },
    threads: { type: "string", default: "1" },
    tool: { type: "string", default: "wrk" },
    "nginx-workers": { type: "string", default: "1" },
    repeat: { type: "string", default: "3" },
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

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function exec(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(file, args, { maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${file}: ${stderr || err.message}`)) : resolve(stdout + stderr),
    ),
  );
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

async function startOurs(root: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    [BIN, "node", "--root", root, "--listen", "127.0.0.1:0", "--admin", "none", "--node-id", "bench"],
    { stdio: ["ignore", "pipe", "inherit"] },
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

async function startNginx(dir: string, root: string): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
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
    listen 127.0.0.1:${port};
    root ${root};
  }
}
`,
  );
  const child = spawn("nginx", ["-p", dir, "-c", conf], { stdio: ["ignore", "ignore", "inherit"] });
  await waitForPort(port);
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

async function load(url: string, seconds: number): Promise<{ rps: number; mbps: number; errors: number }> {
  if (opts.tool === "autocannon") {
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
  const out = await exec("wrk", [`-t${THREADS}`, `-c${CONNS}`, `-d${seconds}s`, url]);
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
  let ours: { child: ChildProcess; port: number } | null = null;
  let nginx: { child: ChildProcess; port: number } | null = null;
  try {
    ours = await startOurs(root);
    nginx = await startNginx(dir, root);
    const servers = [
      { name: "sc-cluster (kernel stack)", port: ours.port },
      { name: "nginx", port: nginx.port },
    ];
    for (const f of FILES) {
      for (const s of servers) await load(`http://127.0.0.1:${s.port}/${f.name}`, 1); // warm-up
      // Alternate the servers run by run so drift in machine load hits both alike; keep the median.
      const runs = new Map<string, { rps: number; mbps: number; errors: number }[]>();
      for (let i = 0; i < REPEAT; i++) {
        for (const s of servers) {
          const r = await load(`http://127.0.0.1:${s.port}/${f.name}`, DURATION);
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
    if (ours) await stop(ours.child, "SIGTERM");
    if (nginx) await stop(nginx.child, "SIGQUIT");
    await rm(dir, { recursive: true, force: true });
  }
  const nginxVersion = (await exec("nginx", ["-v"]).catch((e: Error) => e.message))
    .trim()
    .replace("nginx version: ", "");
  console.log(
    `\nserver-bench: loopback, ${opts.tool} ${opts.tool === "wrk" ? `-t${THREADS} ` : ""}-c${CONNS}, ` +
      `median of ${REPEAT} runs of ${DURATION}s, keep-alive; ${nginxVersion}, worker_processes ${opts["nginx-workers"]}\n`,
  );
  console.log("| file | sc-cluster req/s | nginx req/s | ratio | sc-cluster MB/s | nginx MB/s |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
  for (const f of FILES) {
    const a = results.find((r) => r.file === f.name && r.server.startsWith("sc-cluster"))!;
    const b = results.find((r) => r.file === f.name && r.server === "nginx")!;
    console.log(
      `| ${f.name} | ${a.rps.toFixed(0)} | ${b.rps.toFixed(0)} | ${(a.rps / b.rps).toFixed(2)} | ${a.mbps.toFixed(1)} | ${b.mbps.toFixed(1)} |`,
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
