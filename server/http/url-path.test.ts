// The path mapping (url-path.ts) over every printable ASCII character but "/" and a few UTF-8
// names: every spelling of a name maps to that name, the canonical spelling keeps what RFC 3986
// allows literally, and no spelling of a climb, an encoded "/" or a NUL maps to a path.
import { test } from "node:test";
import assert from "node:assert/strict";
import { encodePath, encodeSegment, normalizePath } from "./url-path.js";
import { nameCases, printableAscii, refusedSpellings } from "./url-path-testing.js";

test("every spelling of a file name maps to the name (raw, canonical, %XX in either case)", () => {
  const cases = nameCases();
  assert.ok(cases.length > 180);
  for (const { file, spellings } of cases) {
    for (const s of spellings) {
      assert.deepEqual(normalizePath(s), { ok: true, path: "/" + file }, `${s} -> ${file}`);
      // Under a directory and in the directory form too.
      assert.deepEqual(normalizePath("/d" + s), { ok: true, path: "/d/" + file }, `/d${s}`);
      assert.deepEqual(normalizePath(s + "/"), { ok: true, path: "/" + file + "/" }, `${s}/`);
    }
  }
});

test("the RFC 3986 sub-delims, ':' and '@' map to themselves raw and encoded (one key for both)", () => {
  for (const c of ":@!$&'()*+,;=") {
    const hex = c.charCodeAt(0).toString(16).toUpperCase();
    assert.deepEqual(normalizePath(`/a${c}b`), { ok: true, path: `/a${c}b` });
    assert.deepEqual(normalizePath(`/a%${hex}b`), { ok: true, path: `/a${c}b` });
    assert.deepEqual(normalizePath(`/a%${hex.toLowerCase()}b`), { ok: true, path: `/a${c}b` });
  }
});

test("canonical spelling: pchar literal except ';', everything else %XX upper-case UTF-8", () => {
  // What the node sends to the origin: the old encoder escaped these, and the origin did not
  // map %3A/%2B/... back to the file.
  assert.equal(encodePath("/:a"), "/:a");
  assert.equal(encodePath("/a+b/c=d,e@f$g&h"), "/a+b/c=d,e@f$g&h");
  assert.equal(encodePath("/a!b'c(d)e*f~g-h_i.j"), "/a!b'c(d)e*f~g-h_i.j");
  assert.equal(encodePath("/a;b"), "/a%3Bb");
  assert.equal(encodePath("/a b%c?d#e"), "/a%20b%25c%3Fd%23e");
  assert.equal(encodePath("/%2B"), "/%252B");
  assert.equal(encodePath("/a\\b"), "/a%5Cb");
  assert.equal(encodePath("/café/"), "/caf%C3%A9/");
  for (const c of printableAscii()) {
    const seg = encodeSegment(`a${c}b`);
    const literal = /^[A-Za-z0-9\-._~!$&'()*+,=:@]$/.test(c);
    assert.equal(
      seg,
      literal ? `a${c}b` : `a%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}b`,
    );
  }
});

test("normalizePath(encodePath(p)) === p for every document path, and encodePath is idempotent on it", () => {
  for (const { file } of nameCases()) {
    for (const p of [`/${file}`, `/d/${file}/`, `/${file}/${file}`]) {
      const enc = encodePath(p);
      assert.deepEqual(normalizePath(enc), { ok: true, path: p }, p);
      const again = normalizePath(enc);
      assert.equal(again.ok && encodePath(again.path), enc);
    }
  }
});

test("traversal, encoded '/', NUL and backslash climbs are refused in every spelling", () => {
  for (const s of refusedSpellings("secret.txt")) {
    if (s.startsWith("/%252e")) continue; // a file literally named "%2e%2e": allowed, and missing
    const r = normalizePath(s);
    assert.equal(r.ok, false, s);
    assert.equal(!r.ok && r.status, 400, s);
  }
  assert.deepEqual(normalizePath("/%252e%252e/x"), { ok: true, path: "/%2e%2e/x" });
  // A backslash is a file-name character; ".." between backslashes is not.
  assert.deepEqual(normalizePath("/a%5Cb"), { ok: true, path: "/a\\b" });
  assert.deepEqual(normalizePath("/a%5C.b%5C...%5C"), { ok: true, path: "/a\\.b\\...\\" });
  for (const s of ["/..%5C", "/%5C..", "/a%5C..%5Cb", "/a%5c..", "/..%5c..", "/%2e%2e%5cx"]) {
    assert.equal(normalizePath(s).ok, false, s);
  }
  // Raw characters no request-target carries.
  for (const s of ["/a\\b", "/a b", "/a\tb", "/caf\u00e9", "/a\u007fb", "/a#b", "/\u0100"]) {
    const r = normalizePath(s);
    assert.equal(!r.ok && r.status, 400, JSON.stringify(s));
  }
});

test("RFC 3986 allows these raw; the node's parser admits the rest of visible ASCII raw too", () => {
  for (const c of "-._~!$&'()*+,;=:@\"<>[]^`{|}") {
    assert.deepEqual(normalizePath(`/a${c}b`), { ok: true, path: `/a${c}b` }, c);
  }
});
