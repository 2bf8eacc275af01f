// The HTTP helper, run on loopback without a namespace (the spawner runs it directly).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { HostHttp, type HostSpawner } from "./http-agent.js";

const direct: HostSpawner = { spawn: (_host, cmd, args, options) => spawn(cmd, args, options) };

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
  );
}

const connections: string[] = [];
const server = createServer((req, res) => {
  connections.push(`${req.socket.remotePort}`);
  if (req.url === "/slow") return; // never answers
  if (req.url === "/json")
    return res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
  if (req.url === "/echo") {
    let body = "";
    req.on("data", (b: Buffer) => (body += b.toString()));
    req.on("end", () =>
      res.end(`${req.method} ${req.headers["content-type"]} ${req.headers.authorization ?? "-"} ${body}`),
    );
    return;
  }
  if (req.url === "/big") return res.end(Buffer.alloc(5 * 1024 * 1024, "x"));
  res.writeHead(req.url === "/missing" ? 404 : 200).end(`hello ${req.method} ${req.headers.connection}`);
});
let port = 0;
before(async () => (port = await listen(server)));
after(() => server.close());

test("GETs from the helper: status, body, a new connection each, errors and timeouts as answers", async () => {
  const base = `http://127.0.0.1:${port}`;
  const http = new HostHttp(direct, "client");
  try {
    const [a, b, missing] = await Promise.all([
      http.get(`${base}/a`),
      http.get(`${base}/b`),
      http.get(`${base}/missing`),
    ]);
    assert.deepEqual(a, { status: 200, body: "hello GET close", bytes: 15 });
    assert.equal(b.status, 200);
    assert.equal(missing.status, 404);
    assert.equal(new Set(connections).size, 3, "one connection per request");
    const head = await http.get(`${base}/a`, 2000, "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
    assert.deepEqual(await http.json(`${base}/json`), { ok: true });
    await assert.rejects(http.json(`${base}/missing`), /HTTP 404/);
    const put = await http.request({ url: `${base}/echo`, method: "PUT", json: { weight: 2 } });
    assert.equal(put.body, 'PUT application/json - {"weight":2}');
    const authed = await http.request({
      url: `${base}/echo`,
      method: "DELETE",
      headers: { authorization: "Bearer abc" },
    });
    assert.equal(authed.body, "DELETE undefined Bearer abc ");

    const slow = await http.get(`${base}/slow`, 200);
    assert.equal(slow.status, undefined);
    assert.equal(slow.error, "timeout");
    const spare = createServer();
    const closed = await listen(spare);
    await new Promise((r) => spare.close(r));
    const refused = await http.get(`http://127.0.0.1:${closed}/`, 1000);
    assert.equal(refused.error, "ECONNREFUSED");
    assert.match((await http.get("not a url")).error ?? "", /Invalid URL/);

    const big = await http.get(`${base}/big`, 5000);
    assert.equal(big.bytes, 5 * 1024 * 1024);
    assert.equal(big.body.length, 4 * 1024 * 1024, "bodies are cut at 4 MiB");
    assert.equal(http.failure, undefined);
  } finally {
    await http.close();
  }
  assert.equal((await http.get(`${base}/a`)).error, "http agent exited");
});

test("requests in flight when the helper dies are answered with an error, not left hanging", async () => {
  let child: ReturnType<typeof spawn> | undefined;
  const http = new HostHttp(
    {
      spawn: (h, cmd, args, o) => {
        child = direct.spawn(h, cmd, args, o);
        return child;
      },
    },
    "client",
  );
  const seen = once(server, "request");
  const pending = http.get(`http://127.0.0.1:${port}/slow`, 30_000);
  await seen; // the helper has sent it: now it dies
  child!.kill("SIGKILL");
  const a = await pending;
  assert.match(a.error ?? "", /http agent exited/);
  assert.match(http.failure ?? "", /HTTP helper in the client host exited/);
});
