import { test } from "node:test";
import assert from "node:assert/strict";
import {
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import { buildSite, chooseDocuments, judgeUrls, manifestEntries, UrlCensus } from "./site.js";
import type { Classified, RequestKind } from "./classify.js";
import { SiteWriter } from "./site-writer.js";
import { documentBytes } from "./content.js";
import { readManifest, SITE_MTIME, type DocumentEntry } from "./manifest.js";
import { withTempDir } from "./test-support.js";
import { encodePath, normalizePath } from "../server/http/url-path.js";
import { nameCases } from "../server/http/url-path-testing.js";

function clf(method: string, url: string, status: number, bytes: number | "-"): string {
  return `h - - [01/Aug/1995:00:00:01 -0400] "${method} ${url} HTTP/1.0" ${status} ${bytes}`;
}

/** Every path under dir (files, directories, links), relative to it. */
function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    out.push(relative(base, p));
    if (lstatSync(p).isDirectory()) out.push(...walk(p, base));
  }
  return out.sort();
}

test("site: documents of their largest logged size, manifest per URL, skips counted", async () => {
  await withTempDir(async (dir) => {
    const trace = join(dir, "t.log");
    const lines = [
      clf("GET", "/index.html", 200, 100),
      clf("GET", "/index.html", 200, 150),
      clf("GET", "/", 304, 0),
      clf("GET", "/img/a.gif", 200, 50),
      clf("GET", "/img/a.gif", 304, "-"),
      clf("HEAD", "/img/a.gif", 200, 0),
      clf("GET", "/missing.html", 404, "-"),
      clf("GET", "/nope/", 404, "-"),
      clf("GET", "/img/", 404, "-"),
      clf("GET", "/img/a.gif/x", 404, "-"),
      clf("GET", "/cgi-bin/x", 200, 10),
      clf("POST", "/form.html", 200, 10),
      clf("GET", "/r", 302, "-"),
      clf("GET", "/only304.html", 304, 0),
      clf("GET", "/a", 200, 7),
      clf("GET", "/a/b", 200, 8),
      clf("GET", "/a/b", 200, 8),
      clf("GET", "/ksc.html", 200, 30),
      clf("GET", "/ksc.html", 200, 30),
      clf("GET", "/ksc.html/", 200, 30),
      clf("GET", "/q.html?x=1", 200, 5),
      "garbage line",
    ];
    writeFileSync(trace, lines.join("\n") + "\n");
    const root = join(dir, "root");
    const manifestPath = join(dir, "m.jsonl");
    const r = await buildSite({ trace, out: root, manifest: manifestPath });

    assert.equal(r.trace.bad, 1);
    assert.deepEqual(r.skippedByReason, {
      cgi: 1,
      method: 1,
      redirect: 1,
      unknown_size: 1,
      file_dir_collision: 2,
      ambiguous_404: 2,
      query: 1,
    });
    assert.equal(r.skipped, 9);
    assert.equal(r.replayable, 21 - 9);
    assert.deepEqual(walk(root), ["a", "a/b", "img", "img/a.gif", "index.html", "ksc.html"]);
    for (const [doc, size] of [
      ["/index.html", 150],
      ["/img/a.gif", 50],
      ["/a/b", 8],
      ["/ksc.html", 30],
    ] as const) {
      const p = join(root, doc);
      assert.deepEqual(readFileSync(p), documentBytes(doc, size), doc);
      assert.equal(statSync(p).mtimeMs, SITE_MTIME * 1000);
    }
    assert.equal(r.documents, 4);
    assert.equal(r.bytes, 150 + 50 + 8 + 30);

    const m = await readManifest(manifestPath);
    assert.equal(m.header.entries, m.entries.size);
    assert.equal(m.header.documents, 4);
    assert.deepEqual([...m.entries.keys()].sort(), [
      "/",
      "/a/b",
      "/img/a.gif",
      "/index.html",
      "/ksc.html",
      "/missing.html",
      "/nope/",
    ]);
    const root200 = m.entries.get("/") as DocumentEntry;
    assert.equal(root200.doc, "/index.html");
    assert.equal(root200.size, 150);
    assert.deepEqual(root200.kinds, ["conditional"]);
    assert.equal(root200.sha256, (m.entries.get("/index.html") as DocumentEntry).sha256);
    assert.deepEqual((m.entries.get("/img/a.gif") as DocumentEntry).kinds, ["conditional", "get", "head"]);
    assert.deepEqual(m.entries.get("/missing.html"), { url: "/missing.html", status: 404, kinds: ["get"] });
  });
});

test("site: no file is ever created outside the document root, whatever the URLs", async () => {
  await withTempDir(async (dir) => {
    const hostile = [
      "/../escape1",
      "/a/../../escape2",
      "/%2e%2e/%2e%2e/escape3",
      "/..%2f..%2fescape4",
      "/a/%2F../escape5",
      "/a%5c..%5c..%5cescape6",
      "/%00escape7",
      "http://evil.example/../escape8",
      "/.%2e/escape9",
      "/" + "L".repeat(300),
      "/ok/" + "L".repeat(255),
      "/x/./y/../z.html",
      "/%252e%252e/literal",
      "//double//slash.html",
      "/.hidden",
      "/%c0%ae%c0%ae/overlong-utf8",
    ];
    const trace = join(dir, "t.log");
    writeFileSync(trace, hostile.map((u) => clf("GET", u, 200, 3)).join("\n") + "\n");
    const root = join(dir, "site", "root");
    mkdirSync(join(dir, "site"));
    const r = await buildSite({ trace, out: root, manifest: join(dir, "site", "m.jsonl") });
    // Nothing but the root and the manifest next to it; nothing in the temp dir but those.
    assert.deepEqual(readdirSync(dir).sort(), ["site", "t.log"]);
    assert.deepEqual(readdirSync(join(dir, "site")).sort(), ["m.jsonl", "root"]);
    assert.deepEqual(walk(root), [
      "%2e%2e",
      "%2e%2e/literal",
      "double",
      "double/slash.html",
      "ok",
      "ok/" + "L".repeat(255),
      "x",
      "x/z.html",
    ]);
    assert.equal(r.documents, 4);
    assert.deepEqual(r.skippedByReason, {
      escapes_root: 5,
      encoded_slash: 2,
      backslash: 1,
      control_char: 1,
      name_too_long: 1,
      dotfile: 1,
      bad_encoding: 1,
    });
  });
});

test("site refuses a non-empty root, so stale files cannot answer for a new trace", async () => {
  await withTempDir(async (dir) => {
    const trace = join(dir, "t.log");
    writeFileSync(trace, clf("GET", "/a.html", 200, 1) + "\n");
    mkdirSync(join(dir, "root"));
    writeFileSync(join(dir, "root", "stale.html"), "old");
    await assert.rejects(
      buildSite({ trace, out: join(dir, "root"), manifest: join(dir, "m.jsonl") }),
      /is not empty/,
    );
  });
});

test("SiteWriter never follows a symlink planted in the root, and rejects unsafe paths", async () => {
  await withTempDir(async (dir) => {
    const outside = join(dir, "outside");
    mkdirSync(outside);
    writeFileSync(join(outside, "victim"), "untouched");
    const w = new SiteWriter(join(dir, "root"), SITE_MTIME);
    w.write("/d/a.html", 10);
    symlinkSync(outside, join(w.root, "evil"));
    symlinkSync(join(outside, "victim"), join(w.root, "link.html"));
    assert.throws(() => w.write("/evil/x.html", 10), /not a directory/);
    assert.throws(() => w.write("/link.html", 10), /cannot create/);
    for (const bad of [
      "/../x",
      "/a/../../x",
      "/./x",
      "//x",
      "/.x",
      "x",
      "/a\\..\\b",
      "/a\\..",
      "/a\u0000b",
      "/",
      "/d/",
    ]) {
      assert.throws(() => w.write(bad, 1), /unsafe|bad document path/, bad);
    }
    assert.deepEqual(readdirSync(outside), ["victim"]);
    assert.equal(readFileSync(join(outside, "victim"), "utf8"), "untouched");
    assert.deepEqual(walk(w.root), ["d", "d/a.html", "evil", "link.html"]);
  });
});

test("site round-trips every printable ASCII and UTF-8 file name from CLF and NASA traces", async () => {
  await withTempDir(async (dir) => {
    const cases = nameCases();
    const sizeOf = (i: number) => 5 + (i % 7);
    // Every spelling of each name (raw where RFC 3986 allows, canonical, %XX), in both formats.
    const clfLines: string[] = [];
    const nasaLines = ["host\tlogname\ttime\tmethod\turl\tresponse\tbytes"];
    cases.forEach(({ spellings }, i) => {
      for (const s of spellings) {
        clfLines.push(clf("GET", s, 200, sizeOf(i)));
        nasaLines.push(`h\t-\t804571201\tGET\t${s}\t200\t${sizeOf(i)}`);
      }
    });
    for (const [name, lines, format] of [
      ["t.log", clfLines, "clf"],
      ["t.tsv", nasaLines, "nasa-tsv"],
    ] as const) {
      const trace = join(dir, name);
      writeFileSync(trace, lines.join("\n") + "\n");
      const root = join(dir, `root-${format}`);
      const manifestPath = join(dir, `m-${format}.jsonl`);
      const r = await buildSite({ trace, out: root, manifest: manifestPath });
      assert.equal(r.trace.format, format);
      assert.deepEqual(r.skippedByReason, {}, format);
      // One file per name, of its logged size, and nothing else.
      assert.deepEqual(walk(root), cases.map((c) => c.file).sort(), format);
      cases.forEach(({ file }, i) => assert.equal(statSync(join(root, file)).size, sizeOf(i), file));
      // One manifest entry per name: its canonical URL, which the servers map to the file.
      const m = await readManifest(manifestPath);
      assert.equal(m.entries.size, cases.length, format);
      for (const { file } of cases) {
        const url = encodePath("/" + file);
        const e = m.entries.get(url) as DocumentEntry | undefined;
        assert.equal(e?.doc, "/" + file, `${format} ${url}`);
        assert.deepEqual(normalizePath(url), { ok: true, path: "/" + file });
      }
    }
  });
});

test("a manifest whose URL is not canonical, or names another document, is refused", async () => {
  await withTempDir(async (dir) => {
    const header = JSON.stringify({
      format: "sc-cluster-manifest",
      version: 1,
      content: "x",
      mtime: SITE_MTIME,
      last_modified: "x",
      entries: 1,
      documents: 1,
      bytes: 1,
      source: {},
    });
    const sha = "0".repeat(64);
    for (const [url, doc] of [
      ["/a%2Bb", "/a+b"],
      ["/a+b", "/a%2Bb"],
      ["/a/../b", "/b"],
    ]) {
      const p = join(dir, "m.jsonl");
      const entry = { url, status: 200, doc, size: 1, sha256: sha, kinds: ["get"] };
      writeFileSync(p, header + "\n" + JSON.stringify(entry) + "\n");
      await assert.rejects(readManifest(p), /not a canonical URL/, url);
    }
  });
});

/** A classified GET (or other kind) of a document path, as the Classifier gives it. */
function seen(
  url: string,
  status: 200 | 304 | 404 | null,
  bytes: number | null = 10,
  kind: RequestKind = "get",
): Classified {
  const isDirectory = url.endsWith("/");
  return { ok: true, kind, url, docPath: isDirectory ? `${url}index.html` : url, isDirectory, status, bytes };
}

function census(lines: Classified[]): UrlCensus {
  const c = new UrlCensus();
  for (const l of lines) c.add(l);
  return c;
}

test("UrlCensus: lines per URL, the largest 200 GET body per document, skips by reason", () => {
  const c = census([
    seen("/a", 200, 50),
    seen("/a", 200, 80),
    seen("/a", 200, 900, "head"),
    seen("/a", 304, 0, "conditional"),
    { ok: false, reason: "cgi" },
    { ok: false, reason: "cgi" },
    seen("/gone", 404, 0),
  ]);
  assert.deepEqual([...c.docSize], [["/a", 80]]);
  assert.equal(c.urls.get("/a")?.lines, 4);
  assert.deepEqual([...(c.urls.get("/a")?.kinds ?? [])].sort(), ["conditional", "get", "head"]);
  assert.equal(c.urls.get("/gone")?.saw404, true);
  assert.deepEqual(c.skippedByReason, { cgi: 2 });
  assert.equal(c.skipped, 2);
});

test("chooseDocuments: of a file and a directory at one path, the more requested wins (ties: the shorter)", () => {
  const popularFile = census([seen("/a", 200), seen("/a", 200), seen("/a/b", 200)]);
  const l1 = chooseDocuments(popularFile);
  assert.deepEqual([...l1.docs.keys()], ["/a"]);
  const popularDir = census([seen("/a", 200), seen("/a/b", 200), seen("/a/b", 200)]);
  const l2 = chooseDocuments(popularDir);
  assert.deepEqual([...l2.docs], [["/a/b", 10]]);
  assert.deepEqual([...l2.dirs], ["/a"]);
  const tie = chooseDocuments(census([seen("/a/b", 200), seen("/a", 200)]));
  assert.deepEqual([...tie.docs.keys()], ["/a"]);
});

test("judgeUrls: documents and plain 404s kept in URL order, the rest skipped by reason", () => {
  const c = census([
    seen("/z", 200),
    seen("/a", 200),
    seen("/a/b", 200), // loses to /a: a collision
    seen("/gone", 404),
    seen("/gone", 404),
    seen("/a/x", 404), // under the document /a: whether it is 404 depends on the server
    seen("/head-only", 200, 5, "head"), // no 200 GET: no size
    seen("/cond", 404),
    seen("/cond", 304, 0, "conditional"), // a 404 also asked conditionally: the answer is unknown
    seen("/list", null),
  ]);
  c.add(seen("/a", 200));
  const { kept, replayable } = judgeUrls(c, chooseDocuments(c));
  assert.deepEqual(
    kept.map((k) => [k.url, k.kind]),
    [
      ["/a", "doc"],
      ["/gone", "404"],
      ["/z", "doc"],
    ],
  );
  assert.equal(replayable, 5);
  assert.deepEqual(c.skippedByReason, {
    file_dir_collision: 1,
    ambiguous_404: 1,
    unknown_size: 3,
    no_status: 1,
  });
  const entries = manifestEntries(
    kept,
    new Map([
      ["/a", 10],
      ["/z", 10],
    ]),
    new Map([
      ["/a", "s1"],
      ["/z", "s2"],
    ]),
  );
  assert.deepEqual(entries, [
    { url: "/a", status: 200, doc: "/a", size: 10, sha256: "s1", kinds: ["get"] },
    { url: "/gone", status: 404, kinds: ["get"] },
    { url: "/z", status: 200, doc: "/z", size: 10, sha256: "s2", kinds: ["get"] },
  ]);
});
