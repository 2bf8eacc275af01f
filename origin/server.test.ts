import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "undici";
import { startOrigin } from "./server.js";
import { createLogger } from "../server/log.js";
import { fileEtag, httpDate } from "../server/http/validators.js";

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

test("origin refuses symlinks that leave the root (404) and follows those that stay inside", async () => {
  const base = await mkdtemp(join(tmpdir(), "sc-origin-links-"));
  const root = join(base, "site");
  const outside = join(base, "outside");
  await mkdir(join(root, "sub"), { recursive: true });
  await mkdir(join(root, "idx"));
  await mkdir(outside);
  await writeFile(join(root, "a.txt"), "inside\n");
  await writeFile(join(root, "sub", "index.html"), "<p>sub</p>");
  await writeFile(join(root, "sub", "b.txt"), "b");
  await writeFile(join(outside, "secret.txt"), "secret\n");
  await writeFile(join(outside, "index.html"), "<p>secret</p>");
  await symlink("a.txt", join(root, "in-link.txt"));
  await symlink("sub", join(root, "sub-link"));
  await symlink("../outside/secret.txt", join(root, "out-link.txt"));
  await symlink("/etc/hostname", join(root, "hostname"));
  await symlink("../outside", join(root, "out-dir"));
  await symlink("../../outside/index.html", join(root, "idx", "index.html"));
  await symlink("missing.txt", join(root, "dangling.txt"));
  await symlink("loop-b", join(root, "loop-a"));
  await symlink("loop-a", join(root, "loop-b"));
  const origin = await startOrigin({ root, host: "127.0.0.1", port: 0, logger: createLogger("silent") });
  const base_ = `http://127.0.0.1:${origin.address.port}`;
  const get = async (path: string, headers: Record<string, string> = {}, method = "GET") => {
    const r = await request(`${base_}${path}`, { method, headers });
    return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
  };
  try {
    // Inside the root: served as the file the link names, with that file's validators.
    const st = await stat(join(root, "a.txt"));
    const a = await get("/in-link.txt");
    assert.equal(a.status, 200);
    assert.equal(a.body, "inside\n");
    assert.equal(a.headers.etag, fileEtag(st.size, st.mtimeMs));
    assert.equal(a.headers["content-type"], "text/plain; charset=utf-8");
    const part = await get("/in-link.txt", { range: "bytes=1-3" });
    assert.equal(part.status, 206);
    assert.equal(part.body, "nsi");
    assert.equal((await get("/sub-link/")).body, "<p>sub</p>");
    assert.equal((await get("/sub-link/b.txt")).body, "b");
    const dir = await get("/sub-link?x=1");
    assert.equal(dir.status, 301);
    assert.equal(dir.headers.location, "/sub-link/?x=1");

    // Leaving the root: 404 whatever the form of the request, and nothing of the file is sent.
    for (const [path, method, headers] of [
      ["/out-link.txt", "GET", {}],
      ["/out-link.txt", "HEAD", {}],
      ["/out-link.txt", "GET", { range: "bytes=0-2" }],
      ["/out-link.txt?q=1", "GET", {}],
      ["/%6fut-link.txt", "GET", {}],
      ["/hostname", "GET", {}],
      ["/out-dir/secret.txt", "GET", {}],
      ["/out-dir/", "GET", {}],
      ["/out-dir", "GET", {}],
      ["/idx/", "GET", {}],
      ["/sub-link/../out-link.txt", "GET", {}],
    ] as const) {
      const r = await get(path, headers, method);
      assert.equal(r.status, 404, `${method} ${path}`);
      assert.ok(
        !r.body.includes("secret\n") && !r.body.includes("<p>secret"),
        `${method} ${path}: ${r.body}`,
      );
      // The body is fastify's own 404 (HEAD: none), not bytes of the file.
      if (method === "GET") assert.equal(JSON.parse(r.body).error, "Not Found", `${method} ${path}`);
      else assert.equal(r.body, "", `${method} ${path}`);
      assert.equal(r.headers.etag, undefined, `${method} ${path}`);
    }
    // Broken links are missing files; dotfiles and ".." keep the answers they had.
    assert.equal((await get("/dangling.txt")).status, 404);
    assert.equal((await get("/loop-a")).status, 404);
    assert.equal((await get("/.hidden")).status, 404);
    assert.notEqual((await get("/%2e%2e/outside/secret.txt")).status, 200);
  } finally {
    await origin.close();
    await rm(base, { recursive: true, force: true });
  }
});
