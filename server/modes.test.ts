// The mode hook: a mode sees each request (with its raw bytes) in order, can pause the pipeline,
// answer by itself, hand back a document, or fall back to local serving.
import { test } from "node:test";
import assert from "node:assert/strict";
import { makeRoot, rawExchange, removeRoot, splitResponses, testNode } from "./test-helpers.js";
import type { ConnectionControl, Decision, Mode } from "./modes.js";
import type { HttpRequest } from "./http/parser.js";
import { makeDoc } from "./cache/doc.js";

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
