// Issue 18 item 2 through Socket Cloning: precompressed representations from a 3-node SC
// cluster, every request cloned to the document's home node, curl in the client host. The
// clone's node picks the representation from the forwarded request head (selectRepresentation),
// so the client gets the encoding it asked for, the right bytes, the ETag of that encoding,
// and 304 for that tag only.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from "node:zlib";
import { withCluster, type Cluster } from "../../cluster/index.js";
import { testPrefix } from "../../testbed/index.js";

const FILES = 9;

function metric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(name) && (line[name.length] === " " || line[name.length] === "{")) {
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return sum;
}

interface Got {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

test(
  "precompressed representations through an SC cluster: br/gzip bytes, per-encoding ETags and 304s from the clones",
  { timeout: 240_000 },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), "sc-static-"));
    try {
      const root = join(dir, "root");
      await mkdir(join(root, "js"), { recursive: true });
      const files: Buffer[] = [];
      for (let i = 0; i < FILES; i++) {
        const js = Buffer.from(`var f${i} = ${JSON.stringify(`${i}`.repeat(20000 + i * 1000))};\n`);
        files.push(js);
        await writeFile(join(root, "js", `f${i}.js`), js);
        await writeFile(join(root, "js", `f${i}.js.br`), brotliCompressSync(js));
        await writeFile(join(root, "js", `f${i}.js.gz`), gzipSync(js));
      }
      await writeFile(join(root, "index.html"), "<h1>x</h1>");
      let n = 0;
      const curl = async (c: Cluster, path: string, ...args: string[]): Promise<Got> => {
        const out = join(dir, `body-${n++}`);
        const r = await c.testbed.exec(
          "client",
          "curl",
          ["-s", "--max-time", "5", "-D", "-", "-o", out, ...args, c.vipUrl + path],
          { timeoutMs: 10_000 },
        );
        const lines = r.stdout.split("\r\n");
        const headers = new Map<string, string>();
        for (const l of lines.slice(1)) {
          const i = l.indexOf(":");
          if (i > 0) headers.set(l.slice(0, i).toLowerCase(), l.slice(i + 1).trim());
        }
        const body = await readFile(out).catch(() => Buffer.alloc(0));
        return { status: Number(lines[0]!.split(" ")[1]), headers, body };
      };
      await withCluster(
        {
          prefix: testPrefix("sta"),
          nodes: 3,
          mode: "sc",
          site: root,
          scheduler: "rr",
          extraArgs: {
            node: ["--clone-local-max-bytes", "0", "--cache-control", "/js/**=public, max-age=600"],
          },
        },
        async (c) => {
          // Each request on a new connection: round robin puts 2 of 3 on a node that clones it.
          for (let i = 0; i < FILES; i++) {
            const path = `/js/f${i}.js`;
            const br = await curl(c, path, "-H", "Accept-Encoding: gzip, deflate, br");
            assert.equal(br.status, 200);
            assert.equal(br.headers.get("content-encoding"), "br", path);
            assert.equal(br.headers.get("vary"), "Accept-Encoding");
            assert.equal(br.headers.get("cache-control"), "public, max-age=600");
            assert.deepEqual(brotliDecompressSync(br.body), files[i], path);
            const gz = await curl(c, path, "-H", "Accept-Encoding: gzip");
            assert.equal(gz.headers.get("content-encoding"), "gzip", path);
            assert.deepEqual(gunzipSync(gz.body), files[i]);
            const plain = await curl(c, path);
            assert.equal(plain.headers.get("content-encoding"), undefined);
            assert.deepEqual(plain.body, files[i]);
            const tags = [br, gz, plain].map((g) => g.headers.get("etag")!);
            assert.equal(new Set(tags).size, 3, tags.join(" "));
            const nm = await curl(c, path, "-H", "Accept-Encoding: br", "-H", `If-None-Match: ${tags[0]}`);
            assert.equal(nm.status, 304);
            assert.equal(nm.headers.get("etag"), tags[0]);
            const cross = await curl(
              c,
              path,
              "-H",
              "Accept-Encoding: gzip",
              "-H",
              `If-None-Match: ${tags[0]}`,
            );
            assert.equal(cross.status, 200);
            assert.equal(cross.headers.get("content-encoding"), "gzip");
            // curl --compressed decodes what it got: the file's bytes.
            const decoded = await curl(c, path, "--compressed");
            assert.deepEqual(decoded.body, files[i]);
          }
          let sent = 0;
          let failures = 0;
          for (const node of c.nodes) {
            const m = await c.metrics(node);
            sent += metric(m, "sc_clones_sent_total");
            failures += metric(m, "sc_clone_failures_total");
          }
          const requests = FILES * 6;
          assert.equal(failures, 0);
          assert.ok(sent >= requests / 3, `clones ${sent} of ${requests} requests`);
        },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);
