import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "undici";
import { startOrigin } from "./origin-server.js";
import { createLogger } from "./log.js";
import { fileEtag, httpDate } from "./http/validators.js";

test("origin serves files with the validators nodes compute", async () => {
  const root = await mkdtemp(join(tmpdir(), "sc-origin-"));
  const origin = await startOrigin({ root, host: "127.0.0.1", port: 0, logger: createLogger("silent") });
  try {
    await writeFile(join(root, "a.css"), "body{}\n");
    await mkdir(join(root, "dir"));
    await writeFile(join(root, "dir", "index.html"), "<p>hi</p>");
    await writeFile(join(root, ".secret"), "no");
    const st = await stat(join(root, "a.css"));
    const base = `http://127.0.0.1:${origin.address.port}`;

    const r = await fetch(`${base}/a.css`);
    assert.equal(r.status, 200);
    assert.equal(await r.text(), "body{}\n");
    assert.equal(r.headers.get("etag"), fileEtag(st.size, st.mtimeMs));
    assert.equal(r.headers.get("last-modified"), httpDate(st.mtimeMs));
    assert.equal(r.headers.get("content-type"), "text/css; charset=utf-8");

    // undici.request, not fetch: fetch adds Cache-Control: no-cache to conditional requests.
    const c = await request(`${base}/a.css`, { headers: { "if-none-match": fileEtag(st.size, st.mtimeMs) } });
    assert.equal(c.statusCode, 304);
    await c.body.dump();

    const d = await fetch(`${base}/dir?q=1`, { redirect: "manual" });
    assert.equal(d.status, 301);
    assert.equal(d.headers.get("location"), "/dir/?q=1");
    const i = await fetch(`${base}/dir/`);
    assert.equal(i.status, 200);
    assert.equal(await i.text(), "<p>hi</p>");
    assert.equal(i.headers.get("content-type"), "text/html; charset=utf-8");

    assert.equal((await fetch(`${base}/.secret`)).status, 404);
    assert.equal((await fetch(`${base}/missing`)).status, 404);
    assert.equal(origin.requests, 6);
  } finally {
    await origin.close();
    await rm(root, { recursive: true, force: true });
  }
});

test("origin refuses a missing root with a clear error", async () => {
  await assert.rejects(
    startOrigin({ root: "/nonexistent/sc-root", host: "127.0.0.1", port: 0, logger: createLogger("silent") }),
    /document root '\/nonexistent\/sc-root' does not exist/,
  );
});
