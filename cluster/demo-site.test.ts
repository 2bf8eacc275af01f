import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { readManifest, type DocumentEntry } from "../loadgen/index.js";
import {
  fillTemplate,
  makeDemoSite,
  mixTrace,
  pageValues,
  requestCounts,
  siteManifestEntries,
  siteTotals,
  topDocumentRows,
} from "./demo-site.js";

const tmp = await mkdtemp(join(tmpdir(), "sc-demo-site-test-"));
after(() => rm(tmp, { recursive: true, force: true }));

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else out.push(p);
  }
  return out;
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

test("fillTemplate fills every placeholder and refuses an unknown one", () => {
  assert.equal(fillTemplate("a {{x}} b {{y}}{{x}}", { x: "1", y: "2" }), "a 1 b 21");
  assert.throws(() => fillTemplate("{{nope}}", {}, "/p.html"), /\/p\.html uses \{\{nope\}\}/);
});

test("mixTrace puts a site request after every k-th line, with that line's client and time", () => {
  const w = [1, 2, 3, 4, 5].map(
    (i) => `h${i} - - [01/Jan/2001:00:00:0${i} +0000] "GET /w${i} HTTP/1.0" 200 ${i}`,
  );
  const out = mixTrace(
    w,
    [
      ["/a", 10],
      ["/b", 20],
    ],
    2,
  );
  assert.deepEqual(out, [
    w[0],
    w[1],
    'h2 - - [01/Jan/2001:00:00:02 +0000] "GET /a HTTP/1.0" 200 10',
    w[2],
    w[3],
    'h4 - - [01/Jan/2001:00:00:04 +0000] "GET /b HTTP/1.0" 200 20',
    w[4],
  ]);
  assert.deepEqual(mixTrace(w, [], 2), w);
});

test("the demo site: every manifest entry is on disk with its size and SHA-256, every file is in the manifest", async () => {
  const dir = join(tmp, "a");
  const site = await makeDemoSite(dir, { clientNetns: "xyz-client" });
  const manifest = await readManifest(site.manifest);
  const docs = [...manifest.entries.values()].filter((e): e is DocumentEntry => e.status === 200);
  assert.equal(docs.length, manifest.entries.size);
  for (const e of docs) {
    const body = await readFile(join(site.root, e.doc));
    assert.equal(body.length, e.size, e.url);
    assert.equal(sha256(body), e.sha256, e.url);
  }
  const files = (await walk(site.root)).map((f) => "/" + relative(site.root, f));
  const inManifest = new Set(docs.map((e) => e.doc));
  assert.deepEqual(files.filter((f) => !inManifest.has(f)).sort(), []);
  assert.equal(site.documents, files.length);
  assert.equal(manifest.header.documents, files.length);
  let total = 0;
  for (const f of files) total += (await stat(join(site.root, f))).size;
  assert.equal(site.bytes, total);
  assert.equal(manifest.header.bytes, total);

  // The pages, the images and the 20 MiB file are there; "/" is the index page.
  for (const url of ["/", "/index.html", "/how.html", "/gallery.html", "/workload.html", "/download.html"])
    assert.ok(manifest.entries.has(url), url);
  assert.equal((manifest.entries.get("/") as DocumentEntry).doc, "/index.html");
  assert.equal(site.large.size, 20 * 1024 * 1024);
  assert.equal((manifest.entries.get(site.large.url) as DocumentEntry).sha256, site.large.sha256);
});

test("the demo pages: no placeholder left, every local link and image names a document", async () => {
  const dir = join(tmp, "b");
  const site = await makeDemoSite(dir, { clientNetns: "xyz-client" });
  const manifest = await readManifest(site.manifest);
  const pages = (await walk(site.root)).filter(
    (f) => f.endsWith(".html") && !/^\/d\d/.test("/" + relative(site.root, f)),
  );
  assert.ok(pages.length >= 5);
  let links = 0;
  for (const page of pages) {
    const html = await readFile(page, "utf8");
    assert.doesNotMatch(html, /\{\{|\}\}/, page);
    for (const m of html.matchAll(/(?:href|src)="(\/[^"]*)"/g)) {
      links++;
      assert.ok(
        manifest.entries.has(m[1]!),
        `${relative(site.root, page)} links to ${m[1]}, not in the site`,
      );
    }
  }
  assert.ok(links > 30);
  const download = await readFile(join(site.root, "download.html"), "utf8");
  assert.ok(download.includes(site.large.sha256));
  assert.ok((await readFile(join(site.root, "workload.html"), "utf8")).includes("ip netns exec xyz-client"));
});

test("the demo trace names only manifest documents, mixes pages in, and the site is the same every time", async () => {
  const a = await makeDemoSite(join(tmp, "c1"));
  const b = await makeDemoSite(join(tmp, "c2"));
  const manifest = await readManifest(a.manifest);
  const lines = (await readFile(a.trace, "utf8")).trim().split("\n");
  const urls = lines.map((l) => /"GET (\S+) HTTP\/1\.0" 200 (\d+)$/.exec(l));
  assert.ok(urls.every((m) => m !== null));
  for (const m of urls) {
    const e = manifest.entries.get(m![1]!) as DocumentEntry | undefined;
    assert.ok(e, m![1]);
    assert.equal(e.size, Number(m![2]), m![1]);
  }
  const pages = urls.filter((m) => !/^\/d\d/.test(m![1]!)).length;
  assert.ok(pages >= lines.length / 10, `${pages} of ${lines.length} requests for the site's own files`);
  assert.ok(!urls.some((m) => m![1] === a.large.url), "the large file is not replayed");
  // Same bytes, apart from the workload page, which prints the site's directory.
  assert.equal(await readFile(b.trace, "utf8"), await readFile(a.trace, "utf8"));
  const entries = async (m: string) =>
    (await readFile(m, "utf8")).split("\n").filter((l) => !l.includes('"/workload.html"'));
  assert.deepEqual(await entries(b.manifest), await entries(a.manifest));
});

const doc = (url: string, size: number): DocumentEntry => ({
  url,
  status: 200,
  doc: url,
  size,
  sha256: "0".repeat(64),
  kinds: ["get"],
});
const get = (url: string) => `h - - [01/Jan/2001:00:00:01 +0000] "GET ${url} HTTP/1.0" 200 1`;

test("requestCounts counts the GETs of each URL; other lines count nothing", () => {
  const counts = requestCounts([
    get("/a"),
    get("/b"),
    get("/a"),
    "garbage",
    'h - - [x] "HEAD /a HTTP/1.0" 200 1',
  ]);
  assert.deepEqual(
    [...counts],
    [
      ["/a", 2],
      ["/b", 1],
    ],
  );
});

test("topDocumentRows: most requested first (ties in manifest order), at most n, URLs escaped", () => {
  const docs = [doc("/x", 1), doc("/y<", 2), doc("/z", 3), doc("/w", 4)];
  const counts = new Map([
    ["/z", 5],
    ["/y<", 9],
    ["/w", 5],
  ]);
  const rows = topDocumentRows(docs, counts, 3).split("\n        ");
  assert.deepEqual(rows, [
    '<tr><td><a href="/y&#60;">/y&#60;</a></td><td>2</td><td>9</td></tr>',
    '<tr><td><a href="/z">/z</a></td><td>3</td><td>5</td></tr>',
    '<tr><td><a href="/w">/w</a></td><td>4</td><td>5</td></tr>',
  ]);
});

test("pageValues: counts, sizes as the pages show them, paths and the namespace escaped", () => {
  const workload = { docs: [doc("/a", 1500), doc("/b", 500)], trace: Array(17).fill(get("/a")), bytes: 2000 };
  const large = { url: "/files/big.bin", size: 20 * 1024 * 1024, sha256: "ab" };
  const v = pageValues(workload, large, "/d&d", "c<-client");
  assert.equal(v.documents, "2");
  assert.equal(v.bytes_text, "2.0 kB");
  assert.equal(v.big_text, "20 MiB");
  assert.equal(v.big_size, String(20 * 1024 * 1024));
  assert.equal(v.trace, "/d&#38;d/trace.log");
  assert.equal(v.manifest, "/d&#38;d/manifest.jsonl");
  // 17 workload requests and one site request after every 8th.
  assert.equal(v.requests, "19");
  assert.equal(v.client_netns, "c&#60;-client");
  assert.match(v.top_documents!, /^<tr><td><a href="\/a">\/a<\/a><\/td><td>1500<\/td><td>17<\/td><\/tr>/);
});

test("siteManifestEntries: one entry per document with its size and SHA-256, and / for index.html", () => {
  const added = new Map([
    ["/index.html", Buffer.from("<p>hi</p>")],
    ["/img/a.png", Buffer.from([1, 2, 3])],
  ]);
  const entries = siteManifestEntries(added);
  assert.deepEqual(
    entries.map((e) => [e.url, e.doc, e.size, e.sha256]),
    [
      ["/index.html", "/index.html", 9, sha256(Buffer.from("<p>hi</p>"))],
      ["/img/a.png", "/img/a.png", 3, sha256(Buffer.from([1, 2, 3]))],
      ["/", "/index.html", 9, sha256(Buffer.from("<p>hi</p>"))],
    ],
  );
  assert.throws(() => siteManifestEntries(new Map([["/a.html", Buffer.from("")]])), /no index.html/);
  assert.deepEqual(
    siteTotals({ docs: [doc("/w", 10)], bytes: 10 }, added, { url: "/l", size: 100, sha256: "" }),
    {
      documents: 4,
      bytes: 10 + 12 + 100,
    },
  );
});
