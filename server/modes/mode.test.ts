// The mode hook: a mode sees each request (with its raw bytes) in order, can pause the pipeline,
// answer by itself, hand back a document, or fall back to local serving.
import { test } from "node:test";
import assert from "node:assert/strict";
import { makeRoot, rawExchange, removeRoot, splitResponses, testNode } from "../node/testing.js";
import type { ConnectionControl, Decision, Mode } from "./mode.js";
import type { HttpRequest } from "../http/parser.js";
import { makeDoc } from "../http/doc.js";

test("a mode can pause the pipeline, answer itself, supply a document, or fail", async () => {
  const root = await makeRoot({ "a.txt": "local\n" });
  const seen: string[] = [];
  const raws: string[] = [];
  let release: (d: Decision) => void = () => undefined;
  const paused = new Promise<Decision>((r) => (release = r));
  const peerDoc = makeDoc({
    key: "/peer",
    size: 5,
    mtimeMs: 0,
    etag: '"p"',
    contentType: "text/plain",
    body: Buffer.from("peer\n"),
  });

  const mode: Mode = {
    name: "test",
    decide(req: HttpRequest, ctx: ConnectionControl) {
      seen.push(req.path);
      raws.push(req.raw.toString("latin1"));
      switch (req.path) {
        case "/slow":
          // Later requests must wait: check that nothing was answered for them meanwhile.
          setTimeout(() => release("serve"), 100);
          return paused.then((d) => {
            assert.deepEqual(seen, ["/a.txt", "/slow"]);
            return d;
          });
        case "/handled":
          return ctx.flushed().then(() => {
            ctx.conn.write(Buffer.from("HTTP/1.1 299 Mode\r\nContent-Length: 3\r\n\r\nsc\n"));
            return "done" as const;
          });
        case "/peer":
          return { doc: peerDoc };
        case "/boom":
          throw new Error("mode bug");
        default:
          return "serve";
      }
    },
  };
  const node = await testNode({ root, mode });
  try {
    const reqs = ["/a.txt", "/slow", "/handled", "/peer", "/a.txt", "/boom", "/never"]
      .map((p) => `GET ${p} HTTP/1.1\r\nHost: h\r\n\r\n`)
      .join("");
    const res = splitResponses(await rawExchange(node.address.port, reqs));
    assert.deepEqual(
      res.map((r) => r.status),
      [200, 404, 299, 200, 200, 500],
    );
    assert.equal(res[0]!.body.toString(), "local\n");
    assert.equal(res[2]!.body.toString(), "sc\n");
    assert.equal(res[3]!.body.toString(), "peer\n");
    assert.equal(res[3]!.headers["etag"], '"p"');
    assert.equal(res[5]!.headers["connection"], "close");
    assert.deepEqual(seen, ["/a.txt", "/slow", "/handled", "/peer", "/a.txt", "/boom"]);
    assert.equal(raws[1], "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n");
    assert.equal(node.stats.modeHandled, 1);
  } finally {
    await node.shutdown(100);
    await removeRoot(root);
  }
});

test("sendPrepared writes a prepared response (length known up front) to a bare connection", async () => {
  const { default: net } = await import("node:net");
  const { sendPrepared } = await import("../http/send.js");
  const { RequestParser } = await import("../http/parser.js");
  const root = await makeRoot({ "big.bin": Buffer.alloc(200_000, "b"), "s.txt": "small" });
  const node = await testNode({ root, maxInMemoryBytes: 50_000 });
  try {
    const server = net.createServer(async (sock) => {
      const p = new RequestParser();
      sock.once("data", async (chunk) => {
        p.feed(chunk);
        const req = p.next() as HttpRequest;
        const resp = await node.server.responder.respond(req, false, Date.now());
        sock.write(`${resp.length}\n`);
        await sendPrepared(sock, resp);
        sock.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as { port: number }).port;
    for (const path of ["/big.bin", "/s.txt"]) {
      const raw = await rawExchange(port, `GET ${path} HTTP/1.1\r\nHost: h\r\nRange: bytes=1-\r\n\r\n`);
      const nl = raw.indexOf("\n");
      const length = Number(raw.subarray(0, nl).toString());
      const rest = raw.subarray(nl + 1);
      assert.equal(rest.length, length, path);
      const [res] = splitResponses(rest);
      assert.equal(res!.status, 206);
      assert.equal(res!.body.length, path === "/big.bin" ? 199_999 : 4);
    }
    server.close();
  } finally {
    await node.shutdown(100);
    await removeRoot(root);
  }
});
