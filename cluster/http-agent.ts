// HTTP GETs from inside a testbed host. The control APIs and the VIP live on the testbed LAN,
// which the launcher's own (root) namespace cannot reach unless the testbed is exposed, so
// one small helper process (http-agent-main.ts) runs in a client host and makes the requests.
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

const AGENT = fileURLToPath(new URL("./http-agent-main.js", import.meta.url));

export interface HttpAnswer {
  /** HTTP status, or undefined when no response arrived (then `error` says why). */
  status?: number;
  body: string;
  /** Body bytes received (the body may be cut at 4 MiB). */
  bytes: number;
  error?: string;
}

/** A request the helper makes; `json` becomes an application/json body. */
export interface HttpRequestSpec {
  url: string;
  method?: string;
  json?: unknown;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** Something that can run a program inside a host's namespace (a Testbed does). */
export interface HostSpawner {
  spawn(
    host: string,
    cmd: string,
    args: string[],
    options: { stdio: ["pipe", "pipe", "pipe"] },
  ): ChildProcess;
}

export class HostHttp {
  private readonly child: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, (a: HttpAnswer) => void>();
  private exited = false;
  private stderr = "";

  constructor(spawner: HostSpawner, host: string) {
    this.child = spawner.spawn(host, process.execPath, [AGENT], { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stderr!.on("data", (b: Buffer) => {
      if (this.stderr.length < 4096) this.stderr += b.toString();
    });
    createInterface({ input: this.child.stdout! }).on("line", (line) => {
      let msg: { id: number; status?: number; body?: string; bytes?: number; error?: string };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        return;
      }
      const resolve = this.pending.get(msg.id);
      if (!resolve) return;
      this.pending.delete(msg.id);
      resolve({
        body: msg.body ?? "",
        bytes: msg.bytes ?? 0,
        ...(msg.status !== undefined ? { status: msg.status } : {}),
        ...(msg.error !== undefined ? { error: msg.error } : {}),
      });
    });
    // An agent that dies (e.g. its namespace was deleted) fails what is in flight, never hangs it.
    this.child.on("exit", () => {
      this.exited = true;
      const why = `http agent exited${this.stderr ? `: ${this.stderr.trim().split("\n").pop()}` : ""}`;
      for (const resolve of this.pending.values()) resolve({ body: "", bytes: 0, error: why });
      this.pending.clear();
    });
    this.child.on("error", () => {
      /* reported through exit */
    });
    this.child.stdin!.on("error", () => {
      /* the agent is gone; exit handles it */
    });
  }

  /** Why the helper process is gone (it should live until close()), or undefined while it runs. */
  get failure(): string | undefined {
    return this.exited
      ? `the HTTP helper in the client host exited: ${this.stderr.trim() || "no message"}`
      : undefined;
  }

  /** GET (or HEAD) url from inside the host, on a new connection, within timeoutMs. */
  get(url: string, timeoutMs = 2000, method: "GET" | "HEAD" = "GET"): Promise<HttpAnswer> {
    return this.request({ url, timeoutMs, method });
  }

  /** Any request; `json` is sent as an application/json body (control API changes). */
  request(req: HttpRequestSpec): Promise<HttpAnswer> {
    if (this.exited) return Promise.resolve({ body: "", bytes: 0, error: "http agent exited" });
    const id = this.nextId++;
    const msg = {
      id,
      url: req.url,
      timeoutMs: req.timeoutMs ?? 2000,
      method: req.method ?? "GET",
      ...(req.json !== undefined ? { body: JSON.stringify(req.json) } : {}),
      ...(req.headers !== undefined ? { headers: req.headers } : {}),
    };
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.child.stdin!.write(JSON.stringify(msg) + "\n");
    });
  }

  /** GET url and parse a JSON body; throws when there is no 2xx JSON answer. */
  async json<T>(url: string, timeoutMs = 2000): Promise<T> {
    const a = await this.get(url, timeoutMs);
    if (a.status === undefined || a.status < 200 || a.status > 299)
      throw new Error(`GET ${url}: ${a.error ?? `HTTP ${a.status}`}`);
    return JSON.parse(a.body) as T;
  }

  /** Ends the agent (it exits when its stdin closes). */
  close(): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => this.child.kill("SIGKILL"), 2000);
      this.child.once("exit", () => {
        clearTimeout(t);
        resolve();
      });
      this.child.stdin!.end();
    });
  }
}
