// Helpers for the server's loopback tests: a temporary document root, an in-process node,
// external clients (curl, ab, wrk) run asynchronously, and a raw socket client.
import { execFile } from "node:child_process";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createLogger } from "../log.js";
import { NODE_DEFAULTS, startNode, type NodeConfig, type RunningNode } from "./node.js";

export async function makeRoot(files: Record<string, string | Buffer>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "sc-root-"));
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
  return root;
}

export function removeRoot(root: string): Promise<void> {
  return rm(root, { recursive: true, force: true });
}

export function testNode(over: Partial<NodeConfig>): Promise<RunningNode> {
  return startNode({
    nodeId: "test",
    stack: "kernel",
    listen: { host: "127.0.0.1", port: 0 },
    admin: null,
    cacheBytes: 16 * 1024 * 1024,
    cachePolicy: "lru",
    mode: "local",
    trust: null,
    timeouts: NODE_DEFAULTS.timeouts,
    maxConnections: NODE_DEFAULTS.maxConnections,
    maxInMemoryBytes: NODE_DEFAULTS.maxInMemoryBytes,
    fsConcurrency: 8,
    originConnections: 4,
    originTimeoutMs: 2000,
    logger: createLogger("silent"),
    ...over,
  });
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program without blocking the event loop (the server under test is in-process). */
export function run(
  file: string,
  args: string[],
  timeoutMs = 30_000,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: "latin1", env },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Sends `data` on a fresh connection and collects everything until the server closes. */
export function rawExchange(port: number, data: string | Buffer, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    const parts: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no close within ${timeoutMs} ms; got ${Buffer.concat(parts).toString("latin1")}`));
    }, timeoutMs);
    s.on("connect", () => s.write(data));
    s.on("data", (c) => parts.push(c));
    s.on("error", () => undefined);
    s.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(parts));
    });
  });
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Splits back-to-back responses; `bodiless[i]` marks responses without a body (HEAD, 304). */
export function splitResponses(buf: Buffer, bodiless: boolean[] = []): RawResponse[] {
  const out: RawResponse[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const end = buf.indexOf("\r\n\r\n", pos);
    if (end === -1) throw new Error(`incomplete head: ${buf.subarray(pos).toString("latin1")}`);
    const lines = buf.toString("latin1", pos, end).split("\r\n");
    const status = Number(lines[0]!.split(" ")[1]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const c = l.indexOf(":");
      headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
    }
    pos = end + 4;
    const len = bodiless[out.length] || status === 304 ? 0 : Number(headers["content-length"] ?? 0);
    out.push({ status, headers, body: buf.subarray(pos, pos + len) });
    pos += len;
  }
  return out;
}
