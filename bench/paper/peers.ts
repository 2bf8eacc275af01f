// Running the peers (nginx, haproxy) in a testbed host: installed from Debian when missing,
// configured from a file written to a temp directory, started and stopped by PID. Only the
// processes started here are ever signalled.
import type { ChildProcess } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { run, VIP, nodeIp, type Testbed } from "../../testbed/index.js";
import { findExecutable } from "../../testbed/run.js";
import { proxyConfig, type ProxyConfig, type ProxyKind } from "./peers-config.js";

/** Debian package of each peer. */
const PACKAGE: Record<ProxyKind, string> = { nginx: "nginx", haproxy: "haproxy" };

/**
 * Makes sure the peer's program is installed: `apt-get install -y` from Debian when it is
 * missing (after `apt-get update` if the first attempt fails). Returns its version line.
 */
export async function ensurePeer(kind: ProxyKind, log: (line: string) => void): Promise<string> {
  if (!findExecutable(kind)) {
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    const install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", PACKAGE[kind]];
    log(`${kind} is not installed: ${install.join(" ")}`);
    const first = await run(install, { env, timeoutMs: 600_000, check: false });
    if (first.code !== 0) {
      await run(["apt-get", "update", "-qq"], { env, timeoutMs: 600_000 });
      await run(install, { env, timeoutMs: 600_000 });
    }
    if (!findExecutable(kind))
      throw new Error(`${kind}: still not on PATH after installing ${PACKAGE[kind]}`);
    // Debian starts (and enables) the package's service on the host's port 80; the benchmark
    // runs its own instance in a testbed host, so the package's must not stay (issue 18).
    if (existsSync("/run/systemd/system")) {
      await run(["systemctl", "disable", "--now", PACKAGE[kind]], { check: false });
    } else await run(["service", PACKAGE[kind], "stop"], { check: false });
  }
  return peerVersion(kind);
}

export async function peerVersion(kind: ProxyKind): Promise<string> {
  const r = await run(kind === "nginx" ? ["nginx", "-v"] : ["haproxy", "-v"], { check: false });
  const line = (r.stderr + r.stdout).split("\n").find((l) => l.trim() !== "") ?? "";
  return line
    .replace(/^nginx version: /, "")
    .replace(/ - https?:\S+$/, "")
    .trim();
}

/** The address node K answers on for a proxy (DNAT to the VIP inside node K's host). */
export function serviceIp(k: number): string {
  return `198.18.1.${10 + k}`;
}

/**
 * Makes every node reachable from `proxyHost` at its own address, serviceIp(K). The nodes'
 * user-space stacks answer only for the VIP, which the dispatcher owns; so inside node K's host a
 * DNAT rule turns serviceIp(K):80 into VIP:80 and a route hands the VIP to the node's TUN, and
 * conntrack turns the replies' source back into serviceIp(K). The proxy host routes each
 * serviceIp(K) via node K. Only the testbed's own namespaces are touched.
 */
export async function routeProxyToNodes(tb: Testbed, proxyHost: string, nodes: number): Promise<void> {
  await Promise.all(
    Array.from({ length: nodes }, async (_, i) => {
      const k = i + 1;
      const host = `node${k}`;
      await tb.exec(host, "ip", ["route", "replace", `${VIP}/32`, "dev", "sctun"]);
      await tb.exec(host, "nft", [
        `add table ip scbench; add chain ip scbench pre { type nat hook prerouting priority dstnat; policy accept; }; ` +
          `add rule ip scbench pre ip daddr ${serviceIp(k)} tcp dport 80 dnat to ${VIP}`,
      ]);
      await tb.exec(proxyHost, "ip", ["route", "replace", `${serviceIp(k)}/32`, "via", nodeIp(k)]);
    }),
  );
}

export interface RunningProxy {
  kind: ProxyKind;
  pid: number;
  host: string;
  /** Base URL clients use. */
  url: string;
  /** With TLS (config.tls): the HTTPS base URL. */
  httpsUrl: string | null;
  configFile: string;
  log: string;
  stop(): Promise<void>;
}

/**
 * Writes the proxy's config into `config.dir` and starts it in `host`; resolves once `probe`
 * (a GET through the proxy) answers, rejects (after stopping it) if it exits or never answers.
 */
export async function startProxy(
  tb: Testbed,
  host: string,
  kind: ProxyKind,
  config: ProxyConfig,
  probe: (url: string) => Promise<boolean>,
): Promise<RunningProxy> {
  const dir = config.dir;
  await mkdir(join(dir, "tmp"), { recursive: true });
  await chmod(dir, 0o755); // nginx's workers run unprivileged and must reach their temp paths
  const { file, text, argv } = proxyConfig(kind, config);
  await writeFile(file, text);
  // haproxy reads the chain and its key from one file.
  if (config.tls)
    await writeFile(
      config.tls.pem,
      Buffer.concat([await readFile(config.tls.cert), await readFile(config.tls.key)]),
      { mode: 0o600 },
    );
  const log = join(dir, `${kind}.log`);
  const out = createWriteStream(log);
  await new Promise((r) => out.once("open", r));
  const child: ChildProcess = tb.spawn(host, argv[0]!, argv.slice(1), { stdio: ["ignore", out, out] });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${kind}: could not start`);
  let exited = false;
  const exit = new Promise<void>((r) =>
    child.once("exit", () => {
      exited = true;
      r();
    }),
  );
  const stop = async () => {
    if (!exited) {
      child.kill("SIGTERM"); // nginx: fast shutdown of master and workers; haproxy: stop
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exit;
      clearTimeout(timer);
    }
    out.end();
  };
  const url = `http://${config.listen.host}${config.listen.port === 80 ? "" : `:${config.listen.port}`}`;
  const until = Date.now() + 15_000;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`${kind} exited during start-up; see ${log}`);
    }
    if (await probe(url)) break;
    if (Date.now() > until) {
      await stop();
      throw new Error(`${kind} did not answer at ${url} within 15 s; see ${log}`);
    }
    await sleep(100);
  }
  const httpsUrl = config.tls
    ? `https://${config.listen.host}${config.tls.port === 443 ? "" : `:${config.tls.port}`}`
    : null;
  return { kind, pid, host, url, httpsUrl, configFile: file, log, stop };
}
