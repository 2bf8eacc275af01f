import { test } from "node:test";
import assert from "node:assert/strict";
import { readPeerAnswer, STATUS_NOT_HELD } from "./protocol.js";

const good = {
  "content-length": "12",
  "content-type": "text/html; charset=utf-8",
  etag: '"c-18e4a0b1c2d"',
  "x-sc-mtime": "1712345678901.1235",
  "x-sc-key": "/dir/index.html",
  "x-sc-from": "cache",
};

test("a home's document answer is read exactly", () => {
  assert.deepEqual(readPeerAnswer(200, good, 100), {
    kind: "doc",
    meta: {
      key: "/dir/index.html",
      size: 12,
      mtimeMs: 1712345678901.1235,
      etag: '"c-18e4a0b1c2d"',
      contentType: "text/html; charset=utf-8",
      fromCache: true,
    },
  });
  const fromOrigin = readPeerAnswer(200, { ...good, "x-sc-from": "origin", "x-sc-key": "/a%20b.txt" }, 100);
  assert.equal(fromOrigin.kind, "doc");
  if (fromOrigin.kind === "doc") {
    assert.equal(fromOrigin.meta.fromCache, false);
    assert.equal(fromOrigin.meta.key, "/a b.txt");
  }
});

test("other answers: redirect, authoritative errors, not held, failures", () => {
  assert.deepEqual(readPeerAnswer(301, { "x-sc-redirect": "/dir/" }, 100), {
    kind: "redirect",
    path: "/dir/",
  });
  assert.deepEqual(readPeerAnswer(404, {}, 100), { kind: "error", status: 404 });
  assert.deepEqual(readPeerAnswer(403, {}, 100), { kind: "error", status: 403 });
  // A refused authenticator is not the document's 403: the requester falls back.
  const refused = readPeerAnswer(403, { "x-sc-auth-error": "bad_mac" }, 100);
  assert.equal(refused.kind === "failed" && refused.reason, "auth");
  assert.deepEqual(readPeerAnswer(STATUS_NOT_HELD, {}, 100), { kind: "not-held" });
  for (const s of [500, 502, 504, 400, 405, 204]) {
    const a = readPeerAnswer(s, {}, 100);
    assert.equal(a.kind === "failed" && a.reason, "status", String(s));
  }
});

test("malformed or oversized answers are protocol failures, never documents", () => {
  const cases: Record<string, string | undefined>[] = [
    { "content-length": undefined },
    { "content-length": "-1" },
    { "content-length": "1e3" },
    { "content-length": "101" }, // over the bound
    { etag: undefined },
    { etag: 'W/"x"' },
    { etag: '"a\r\nX-Evil: 1"' },
    { "x-sc-mtime": "soon" },
    { "x-sc-mtime": undefined },
    { "content-type": "text/html\r\nSet-Cookie: a=b" },
    { "content-type": "" },
    { "x-sc-key": "relative" },
    { "x-sc-key": "/../../etc/passwd" },
    { "x-sc-key": "/dir/" },
    { "x-sc-from": "disk" },
  ];
  for (const over of cases) {
    const h: Record<string, string> = { ...good };
    for (const [k, v] of Object.entries(over)) {
      if (v === undefined) delete h[k];
      else h[k] = v;
    }
    const a = readPeerAnswer(200, h, 100);
    assert.equal(a.kind === "failed" && a.reason, "protocol", JSON.stringify(over));
  }
  assert.equal(readPeerAnswer(301, {}, 100).kind, "failed");
  assert.equal(readPeerAnswer(301, { "x-sc-redirect": "/file" }, 100).kind, "failed");
});
