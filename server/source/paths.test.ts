// Issue 23, in process on loopback: a root with a file per printable ASCII character (and some
// UTF-8 names). The origin server, the node's fs source, its origin source and whole nodes (one
// on --root, one on --origin) must serve each file by every spelling of its name, raw where
// RFC 3986 allows it and percent-encoded, with the origin's bytes and ETag; no spelling of a
// climb, an encoded "/" or a NUL is ever served.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startOrigin, type OriginServer } from "../../origin/server.js";
import { createLogger } from "../log.js";
import { testNode } from "../node/testing.js";
import type { RunningNode } from "../node/node.js";
import { fileEtag } from "../http/validators.js";
import { normalizePath } from "../http/url-path.js";
import { nameCases, rawGetAll, refusedSpellings, type RawAnswer } from "../http/url-path-testing.js";
import { FsSource } from "./fs-source.js";
import { OriginSource } from "./origin-source.js";
import type { Lookup } from "./source.js";
import { CLUSTER_DEFAULTS, type ClusterMember } from "../membership/config.js";
import { ClusterSecret } from "../../sc/auth/secret.js";

const cases = nameCases();
const SECRET = "secret.txt";
let base: string;
let root: string;
let origin: OriginServer;
let rootNode: RunningNode;
let originNode: RunningNode;

/** Each file's content names it, so a wrong file is seen as wrong bytes. */
const contentOf = (file: string) => `file ${JSON.stringify(file)}\n`;

before(async () => {
  base = await mkdtemp(join(tmpdir(), "sc-paths-"));
  root = join(base, "root");
  await mkdir(join(root, "d"), { recursive: true });
  await writeFile(join(base, SECRET), "classified\n");
  for (const { file } of cases) {
    await writeFile(join(root, file), contentOf(file));
    await writeFile(join(root, "d", file), contentOf(`d/${file}`));
  }
  origin = await startOrigin({ root, host: "127.0.0.1", port: 0, logger: createLogger("silent") });
  rootNode = await testNode({ root });
  originNode = await testNode({ origin: `http://127.0.0.1:${origin.address.port}` });
});

after(async () => {
  await originNode?.shutdown(100);
  await rootNode?.shutdown(100);
  await origin?.close();
  await rm(base, { recursive: true, force: true });
});

async function etagOf(file: string): Promise<string> {
  const st = await stat(join(root, file));
  return fileEtag(st.size, st.mtimeMs);
}

function docOf(r: Lookup, what: string) {
  assert.equal(r.kind, "doc", `${what}: ${JSON.stringify(r)}`);
  return (r as Extract<Lookup, { kind: "doc" }>).doc;
}

/** Every spelling of every file (at the root and under /d/), with the file it names. */
function targets(): { target: string; file: string }[] {
  const out: { target: string; file: string }[] = [];
  for (const { file, spellings } of cases) {
    for (const s of spellings) {
      out.push({ target: s, file });
      out.push({ target: "/d" + s, file: `d/${file}` });
    }
  }
  return out;
}

function assertServed(
  who: string,
  answers: RawAnswer[],
  want: { file: string }[],
  etags: Map<string, string>,
) {
  const wrong: string[] = [];
  answers.forEach((a, i) => {
    const file = want[i]!.file;
    if (a.status !== 200 || a.body.toString() !== contentOf(file) || a.etag !== etags.get(file))
      wrong.push(`${a.target} -> ${a.status} ${a.etag ?? a.error ?? ""} (want ${file})`);
  });
  assert.deepEqual(wrong, [], `${who}: ${wrong.length} of ${answers.length} spellings not served right`);
}

async function allEtags(): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (const { file } of cases) {
    m.set(file, await etagOf(file));
    m.set(`d/${file}`, await etagOf(join("d", file)));
  }
  return m;
}

test("origin server: every spelling of every name is that file, with its ETag", async () => {
  const t = targets();
  const answers = await rawGetAll(
    "127.0.0.1",
    origin.address.port,
    t.map((x) => x.target),
  );
  assertServed("origin", answers, t, await allEtags());
});

test("nodes on --root and on --origin: every spelling served with the origin's bytes and ETag", async () => {
  const t = targets();
  const etags = await allEtags();
  for (const [who, node] of [
    ["root node", rootNode],
    ["origin node", originNode],
  ] as const) {
    const answers = await rawGetAll(
      "127.0.0.1",
      node.address.port,
      t.map((x) => x.target),
    );
    assertServed(who, answers, t, etags);
  }
});

test("fs source and origin source load every name's document path alike", async () => {
  const fs = await FsSource.create({ root, maxInMemory: 1 << 20, concurrency: 8 });
  const os = new OriginSource({
    url: `http://127.0.0.1:${origin.address.port}`,
    connections: 4,
    timeoutMs: 2000,
    maxObjectBytes: 1 << 20,
  });
  try {
    for (const { file } of cases) {
      const path = "/" + file;
      const a = docOf(await fs.load(path), `fs ${path}`);
      const b = docOf(await os.load(path), `origin ${path}`);
      assert.equal(a.key, path);
      assert.equal(b.key, path);
      assert.equal(a.body?.toString(), contentOf(file), path);
      assert.equal(b.body?.toString(), contentOf(file), path);
      assert.equal(a.etag, await etagOf(file), path);
      assert.equal(b.etag, a.etag, path);
    }
  } finally {
    await os.close();
    await fs.close();
  }
});

test("a directory whose name needs escaping redirects to its canonical directory form", async () => {
  await mkdir(join(root, "a+b dir"));
  await writeFile(join(root, "a+b dir", "index.html"), "<p>dir</p>");
  for (const port of [origin.address.port, rootNode.address.port, originNode.address.port]) {
    const [r] = await rawGetAll("127.0.0.1", port, ["/a+b%20dir", "/a%2Bb%20dir/"]);
    assert.equal(r!.status, 301, `port ${port}`);
    const [d] = await rawGetAll("127.0.0.1", port, ["/a%2Bb%20dir/"]);
    assert.equal(d!.body.toString(), "<p>dir</p>", `port ${port}`);
  }
});

test("no spelling of a climb, encoded '/', NUL or backslash climb is served, by any server", async () => {
  const refused = refusedSpellings(SECRET);
  for (const [who, port] of [
    ["origin", origin.address.port],
    ["root node", rootNode.address.port],
    ["origin node", originNode.address.port],
  ] as const) {
    const answers = await rawGetAll("127.0.0.1", port, refused);
    for (const a of answers) {
      assert.ok(a.status >= 400 && a.status < 500, `${who} ${a.target} -> ${a.status}`);
      assert.ok(!a.body.toString().includes("classified"), `${who} ${a.target}`);
      // What the mapping refuses is a 400 everywhere (the literal "%2e%2e" name is just missing).
      const norm = normalizePath(a.target);
      assert.equal(a.status, norm.ok ? 404 : norm.status, `${who} ${a.target}`);
    }
  }
});

test("one document whatever its spelling: a node on --origin fetches it once", async () => {
  await writeFile(join(root, "x+y=z@w"), contentOf("x+y=z@w"));
  const spellings = ["/x+y=z@w", "/x%2By%3Dz%40w", "/x%2by%3dz%40w", "/d/../x+y=z@w", "//x+y%3Dz@w"];
  const before = origin.requests;
  const answers = await rawGetAll("127.0.0.1", originNode.address.port, spellings, 1);
  for (const a of answers) assert.equal(a.body.toString(), contentOf("x+y=z@w"), a.target);
  assert.equal(origin.requests - before, 1, "origin requests");
});

test("three cf-lru nodes: every spelling from every node through the home peer, one origin fetch per name", async () => {
  // Members on this process's own 127.x.y.N addresses (127/8 is loopback as a whole on Linux).
  const net3 = `127.${(process.pid >> 8) & 0xff || 1}.${process.pid & 0xff}`;
  const members: ClusterMember[] = [1, 2, 3].map((i) => ({ id: `n${i}`, addr: `${net3}.${i}`, weight: 1 }));
  const secret = ClusterSecret.parse("p".repeat(40)) as ClusterSecret;
  const nodes: RunningNode[] = [];
  try {
    for (const self of members) {
      nodes.push(
        await testNode({
          nodeId: self.id,
          mode: "cf-lru",
          origin: `http://127.0.0.1:${origin.address.port}`,
          cluster: { self: self.id, members, ...CLUSTER_DEFAULTS, peerPort: 30_000 + (process.pid % 20_000) },
          trust: { kind: "secret", secret },
        }),
      );
    }
    const t = targets();
    const etags = await allEtags();
    const before = origin.requests;
    for (const [k, node] of nodes.entries()) {
      const answers = await rawGetAll(
        "127.0.0.1",
        node.address.port,
        t.map((x) => x.target),
      );
      assertServed(`cf-lru n${k + 1}`, answers, t, etags);
    }
    // Every name under two directories: one key and one home each, whatever the spelling.
    assert.equal(origin.requests - before, 2 * cases.length, "origin requests");
  } finally {
    await Promise.all(nodes.map((n) => n.shutdown(100)));
  }
});
