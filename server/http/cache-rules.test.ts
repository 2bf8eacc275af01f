import { test } from "node:test";
import assert from "node:assert/strict";
import { CachePatternError, CacheRules, maxAgeOf, parseCacheRule, PathPattern } from "./cache-rules.js";

test("path globs: * within a segment, ** across, ?, file-name patterns without a slash", () => {
  const cases: [string, string, boolean][] = [
    ["/assets/**", "/assets/app.3f2a.js", true],
    ["/assets/**", "/assets/img/logo.png", true],
    ["/assets/**", "/assetsx/a.js", false],
    ["/assets/*", "/assets/img/logo.png", false],
    ["/assets/*.js", "/assets/app.js", true],
    ["/assets/*.js", "/assets/app.css", false],
    ["*.html", "/a/b/c/index.html", true],
    ["*.html", "/a.html/x", false],
    ["index.html", "/docs/index.html", true],
    ["*.????????.js", "/static/main.3f2a9b1c.js", true],
    ["*.????????.js", "/static/main.js", false],
    ["/**/*.css", "/x/y/z.css", true],
    ["/**", "/", true],
    ["/a*b*c", "/abc", true],
    ["/a*b*c", "/a/b/c", false],
  ];
  for (const [pattern, path, want] of cases) {
    assert.equal(new PathPattern(pattern).matches(path), want, `${pattern} vs ${path}`);
  }
});

test("a pathological glob against a long path costs linear time (automaton, no backtracking)", () => {
  const p = new PathPattern("/" + "*a".repeat(40) + "b");
  const path = "/" + "a".repeat(16384);
  const t0 = performance.now();
  assert.equal(p.matches(path), false);
  // Backtracking would take astronomically long; the automaton does 16 K x 82 steps.
  assert.ok(performance.now() - t0 < 200, `${performance.now() - t0} ms`);
});

test("rules: first match wins, max-age gives Expires moving with the clock, bad specs are refused", () => {
  const rules = CacheRules.parse([
    "/assets/**=public, max-age=31536000, immutable",
    "*.html=no-cache",
    "/**=public, max-age=60",
  ]);
  const now = Date.UTC(2026, 11, 6, 12, 0, 0);
  assert.equal(
    rules.linesFor("/assets/a.js", now)!.toString(),
    "Cache-Control: public, max-age=31536000, immutable\r\nExpires: Mon, 06 Dec 2027 12:00:00 GMT\r\n",
  );
  assert.equal(
    rules.linesFor("/assets/x.html", now)!.toString().split("\r\n")[0],
    "Cache-Control: public, max-age=31536000, immutable",
  );
  assert.equal(rules.linesFor("/index.html", now)!.toString(), "Cache-Control: no-cache\r\n");
  assert.equal(
    rules.linesFor("/data.json", now + 1500)!.toString(),
    "Cache-Control: public, max-age=60\r\nExpires: Sun, 06 Dec 2026 12:01:01 GMT\r\n",
  );
  assert.equal(new CacheRules([]).linesFor("/x", now), null);
  assert.equal(CacheRules.parse(["*.css=no-store"]).linesFor("/x.js", now), null);
  assert.equal(maxAgeOf("public, s-maxage=5, max-age=10"), 10);
  assert.equal(maxAgeOf('max-age="7"'), 7);
  assert.equal(maxAgeOf("no-cache"), null);
  for (const bad of ["", "=x", "/a", "/a=", "/a=x\r\nSet-Cookie: y", "/a=\u00e9"]) {
    assert.throws(() => parseCacheRule(bad), CachePatternError, bad);
  }
});
