// Runs inside a client host's namespace (started by http-agent.ts): the launcher's hands in
// the LAN, where the control APIs and the VIP are reachable. Reads one JSON request per line
// on stdin, answers one JSON line per request on stdout, in any order (by id):
//   {"id":1,"url":"http://198.18.0.11:9080/healthz","timeoutMs":1000}
//   {"id":2,"url":"http://198.18.0.1:9100/scheduler","method":"PUT","body":"{\"scheduler\":\"rr\"}",
//    "headers":{"authorization":"Bearer ..."}}
//   {"id":1,"status":200,"body":"{\"status\":\"ok\"}"}   or   {"id":1,"error":"ECONNREFUSED"}
// Every request uses a new connection (Connection: close), so a dead peer is noticed at once.
// Exits when stdin closes.
import { request } from "node:http";
import { createInterface } from "node:readline";

/** Bodies are for small control-plane answers; larger ones are cut (truncated: true). */
const MAX_BODY = 4 * 1024 * 1024;

interface Req {
  id: number;
  url: string;
  timeoutMs?: number;
  method?: string;
  /** A JSON request body (PUT/POST to a control API). */
  body?: string;
  /** Extra request headers (the admin token of a change). */
  headers?: Record<string, string>;
}

function answer(msg: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(msg) + "\n");
}

function get(req: Req): void {
  const timeoutMs = req.timeoutMs ?? 2000;
  let done = false;
  const finish = (msg: Record<string, unknown>) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    answer({ id: req.id, ...msg });
  };
  let r: ReturnType<typeof request>;
  try {
    const headers: Record<string, string | number> = { ...req.headers, connection: "close" };
    if (req.body !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = Buffer.byteLength(req.body);
    }
    r = request(req.url, { method: req.method ?? "GET", agent: false, headers });
  } catch (err) {
    answer({ id: req.id, error: (err as Error).message });
    return;
  }
  // One deadline for the whole exchange, not per socket event.
  const timer = setTimeout(() => {
    finish({ error: "timeout" });
    r.destroy();
  }, timeoutMs);
  r.on("error", (err: NodeJS.ErrnoException) => finish({ error: err.code ?? err.message }));
  r.on("response", (res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let truncated = false;
    res.on("data", (b: Buffer) => {
      if (size < MAX_BODY) chunks.push(b);
      else truncated = true;
      size += b.length;
    });
    res.on("error", (err: NodeJS.ErrnoException) => finish({ error: err.code ?? err.message }));
    res.on("end", () =>
      finish({
        status: res.statusCode,
        body: Buffer.concat(chunks).subarray(0, MAX_BODY).toString("utf8"),
        bytes: size,
        ...(truncated ? { truncated: true } : {}),
      }),
    );
  });
  r.end(req.body);
}

createInterface({ input: process.stdin }).on("line", (line) => {
  let req: Req;
  try {
    req = JSON.parse(line) as Req;
  } catch {
    return;
  }
  if (typeof req.id === "number" && typeof req.url === "string") get(req);
});
process.stdin.on("end", () => process.exit(0));
