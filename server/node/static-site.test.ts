// Issue 18 item 2 with real clients against an in-process node (--stack kernel on loopback):
// precompressed siblings by Accept-Encoding (curl, and Chromium when installed), a distinct
// ETag and 304 per encoding, Cache-Control/Expires per path pattern, the custom 404 page,
// MIME types from mime-types, and the access log with one line per request.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from "node:zlib";
import { makeRoot, removeRoot, run, testNode } from "./testing.js";
import type { RunningNode } from "./node.js";
import { readTrace } from "../../loadgen/trace/reader.js";

const appJs = Buffer.from(`window.appValue = ${JSON.stringify("x".repeat(3000))}.length + 42;\n`.repeat(4));
const styleCss = Buffer.from("body { color: #123456; }\n".repeat(200));
const png = Buffer.alloc(2000, 7);
const notFound = "<!doctype html><title>gone</title><h1>Nothing here</h1>\n";
const index =
  '<!doctype html><title>t</title><script src="/app.js"></script><link rel="stylesheet" href="/style.css">\n';

let root: string;
let logDir: string;
let node: RunningNode;
let base: string;
let requestsSent = 0;

before(async () => {
  root = await makeRoot({
    "index.html": index,
    "app.js": appJs,
    "app.js.br": brotliCompressSync(appJs),
    "app.js.gz": gzipSync(appJs),
    "style.css": styleCss,
    "style.css.gz": gzipSync(styleCss),
    "logo.png": png,
    "logo.png.gz": gzipSync(png),
    "assets/app.3f2a9b1c.js": appJs,
    "assets/app.3f2a9b1c.js.br": brotliCompressSync(appJs),
    "site.webmanifest": "{}",
    "404.html": notFound,
  });
  logDir = await mkdtemp(join(tmpdir(), "sc-static-log-"));
  node = await testNode({
    root,
    precompressed: ["br", "gzip"],
    cacheControl: ["/assets/**=public, max-age=31536000, immutable", "*.html=no-cache"],
    notFoundPage: "/404.html",
    accessLog: { path: join(logDir, "access.log"), format: "combined" },
  });
  base = `http://127.0.0.1:${node.address.port}`;
});

after(async () => {
  await node.shutdown(100);
  await removeRoot(root);
  await rm(logDir, { recursive: true, force: true });
});

interface Got {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

/** curl one URL (one request), raw body bytes (not decoded unless --compressed is given). */
async function curl(path: string, ...args: string[]): Promise<Got> {
  const dir = await mkdtemp(join(tmpdir(), "sc-curl-"));
  try {
    const out = join(dir, "body");
    const r = await run("curl", ["-s", "--max-time", "5", "-D", "-", "-o", out, ...args, base + path]);
    assert.equal(r.code, 0, r.stderr);
    requestsSent++;
    const lines = r.stdout.split("\r\n");
    const headers = new Map<string, string>();
    for (const l of lines.slice(1)) {
      const i = l.indexOf(":");
      if (i > 0) headers.set(l.slice(0, i).toLowerCase(), l.slice(i + 1).trim());
    }
    const body = existsSync(out) ? await readFile(out) : Buffer.alloc(0);
    return { status: Number(lines[0]!.split(" ")[1]), headers, body };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("curl --compressed and explicit Accept-Encoding get the precompressed bytes, each with its ETag", async () => {
  const compressed = await curl("/app.js", "--compressed");
  assert.equal(compressed.status, 200);
  assert.equal(compressed.headers.get("content-encoding"), "br");
  assert.equal(compressed.headers.get("vary"), "Accept-Encoding");
  assert.equal(compressed.headers.get("content-type"), "text/javascript; charset=utf-8");
  assert.deepEqual(compressed.body, appJs, "curl decoded the br body to the file");

  const br = await curl("/app.js", "-H", "Accept-Encoding: br");
  assert.equal(br.headers.get("content-encoding"), "br");
  assert.deepEqual(brotliDecompressSync(br.body), appJs);
  assert.deepEqual(br.body, await readFile(join(root, "app.js.br")));
  assert.equal(Number(br.headers.get("content-length")), br.body.length);

  const gz = await curl("/app.js", "-H", "Accept-Encoding: gzip;q=1, br;q=0.5");
  assert.equal(gz.headers.get("content-encoding"), "gzip");
  assert.deepEqual(gunzipSync(gz.body), appJs);

  const plain = await curl("/app.js");
  assert.equal(plain.headers.get("content-encoding"), undefined);
  assert.equal(plain.headers.get("vary"), "Accept-Encoding");
  assert.deepEqual(plain.body, appJs);

  const tags = [br, gz, plain].map((g) => g.headers.get("etag"));
  assert.equal(new Set(tags).size, 3, `distinct ETags: ${tags.join(" ")}`);

  // Only gzip is there for style.css; a PNG is not compressible, so its .gz is not used.
  assert.equal(
    (await curl("/style.css", "-H", "Accept-Encoding: br, gzip")).headers.get("content-encoding"),
    "gzip",
  );
  const logo = await curl("/logo.png", "-H", "Accept-Encoding: gzip");
  assert.equal(logo.headers.get("content-encoding"), undefined);
  assert.equal(logo.headers.get("vary"), undefined);
  assert.deepEqual(logo.body, png);

  // A range of a compressed representation is a range of its encoded bytes.
  const part = await curl("/app.js", "-H", "Accept-Encoding: br", "-r", "0-9");
  assert.equal(part.status, 206);
  assert.equal(part.headers.get("content-encoding"), "br");
  assert.deepEqual(part.body, br.body.subarray(0, 10));
});

test("304 per encoding: a tag validates only its own representation", async () => {
  const br = await curl("/app.js", "-H", "Accept-Encoding: br");
  const gz = await curl("/app.js", "-H", "Accept-Encoding: gzip");
  const plain = await curl("/app.js");
  const brTag = br.headers.get("etag")!;
  const gzTag = gz.headers.get("etag")!;
  const idTag = plain.headers.get("etag")!;

  const nm = await curl("/app.js", "-H", "Accept-Encoding: br", "-H", `If-None-Match: ${brTag}`);
  assert.equal(nm.status, 304);
  assert.equal(nm.headers.get("etag"), brTag);
  assert.equal(nm.headers.get("vary"), "Accept-Encoding");
  assert.equal(nm.body.length, 0);
  // The br tag does not validate the gzip or identity representation (a cache would get the wrong bytes).
  const cross = await curl("/app.js", "-H", "Accept-Encoding: gzip", "-H", `If-None-Match: ${brTag}`);
  assert.equal(cross.status, 200);
  assert.equal(cross.headers.get("content-encoding"), "gzip");
  assert.deepEqual(gunzipSync(cross.body), appJs);
  assert.equal((await curl("/app.js", "-H", `If-None-Match: ${gzTag}`)).status, 200);
  assert.equal((await curl("/app.js", "-H", `If-None-Match: ${idTag}`)).status, 304);
  assert.equal(
    (await curl("/app.js", "-H", "Accept-Encoding: gzip", "-H", `If-None-Match: ${brTag}, ${gzTag}`)).status,
    304,
  );
});

test("Cache-Control and Expires per path pattern; custom 404 page; types from mime-types", async () => {
  const asset = await curl("/assets/app.3f2a9b1c.js", "-H", "Accept-Encoding: br");
  assert.equal(asset.headers.get("cache-control"), "public, max-age=31536000, immutable");
  const expires = Date.parse(asset.headers.get("expires")!);
  const date = Date.parse(asset.headers.get("date")!);
  assert.equal(expires - date, 31536000 * 1000);
  assert.equal(asset.headers.get("content-encoding"), "br");
  const revalidated = await curl(
    "/assets/app.3f2a9b1c.js",
    "-H",
    "Accept-Encoding: br",
    "-H",
    `If-None-Match: ${asset.headers.get("etag")}`,
  );
  assert.equal(revalidated.status, 304);
  assert.equal(revalidated.headers.get("cache-control"), "public, max-age=31536000, immutable");

  const page = await curl("/");
  assert.equal(page.headers.get("cache-control"), "no-cache");
  assert.equal(page.headers.get("expires"), undefined);
  assert.equal((await curl("/app.js")).headers.get("cache-control"), undefined);

  const missing = await curl("/no/such/page");
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal(missing.body.toString(), notFound);
  const dotfile = await curl("/.env");
  assert.equal(dotfile.status, 404);
  assert.equal(dotfile.body.toString(), notFound);
  const head = await curl("/nope", "-I");
  assert.equal(head.status, 404);
  assert.equal(Number(head.headers.get("content-length")), Buffer.byteLength(notFound));

  assert.equal(
    (await curl("/site.webmanifest")).headers.get("content-type"),
    "application/manifest+json; charset=utf-8",
  );
});

test("Cache-Control rules replaced at run time (what SIGHUP applies); a bad pattern changes nothing", async () => {
  try {
    node.setCacheControl(["*.js=max-age=60"]);
    assert.equal((await curl("/app.js")).headers.get("cache-control"), "max-age=60");
    assert.equal((await curl("/")).headers.get("cache-control"), undefined, "the old *.html rule is gone");
    assert.throws(() => node.setCacheControl(["no-equals-sign"]), /--cache-control: expected PATTERN=VALUE/);
    assert.equal(
      (await curl("/app.js")).headers.get("cache-control"),
      "max-age=60",
      "kept after a refused reload",
    );
    node.setCacheControl([]);
    assert.equal((await curl("/app.js")).headers.get("cache-control"), undefined);
  } finally {
    node.setCacheControl(["/assets/**=public, max-age=31536000, immutable", "*.html=no-cache"]);
  }
});

test("Chromium loads the page: the script it ran came through a compressed representation", async (t) => {
  const CHROMIUM = "/usr/bin/chromium";
  if (!existsSync(CHROMIUM)) {
    t.diagnostic(`${CHROMIUM} is missing (scripts/setup-host.sh --bench installs it): browser check not run`);
    assert.fail(`${CHROMIUM} is missing`);
  }
  const { chromium } = await import("playwright-core");
  const profile = await mkdtemp(join(tmpdir(), "sc-static-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--no-first-run",
    ],
  });
  try {
    const page = await browser.newPage();
    const seen = new Map<string, string | undefined>();
    let responses = 0;
    page.on("response", (r) => {
      responses++;
      seen.set(new URL(r.url()).pathname, r.headers()["content-encoding"]);
    });
    await page.goto(base + "/", { waitUntil: "load" });
    // The script ran: its decoded text is the file's.
    assert.equal(await page.evaluate("window.appValue"), 3042);
    // Chromium offers br to a loopback origin (a secure context) and gets it.
    assert.equal(seen.get("/app.js"), "br");
    assert.equal(seen.get("/style.css"), "gzip");
    assert.equal(await page.evaluate("getComputedStyle(document.body).color"), "rgb(18, 52, 86)");
    await page.close();
    requestsSent += responses;
  } finally {
    await browser.close();
    await rm(profile, { recursive: true, force: true });
  }
});

test("the access log has one combined line per request, read back by loadgen's reader", async () => {
  // Shut down here so the log is flushed; after() shuts down again harmlessly.
  await node.shutdown(100);
  const { records, stats } = await readTrace(join(logDir, "access.log"), { format: "clf" });
  assert.equal(stats.bad, 0);
  // Chromium may also ask for /favicon.ico (a 404 with our page).
  const favicon = records.filter((r) => r.url === "/favicon.ico").length;
  assert.equal(records.length, requestsSent + favicon);
  const text = await readFile(join(logDir, "access.log"), "utf8");
  assert.ok(
    text.split("\n").every((l) => l === "" || / node=test cloned-to=- rt=\d+\.\d{6} sent=\d+$/.test(l)),
  );
  assert.ok(records.some((r) => r.status === 304 && r.bytes === null));
  assert.ok(
    records.some(
      (r) => r.status === 404 && r.url === "/no/such/page" && r.bytes === Buffer.byteLength(notFound),
    ),
  );
});
