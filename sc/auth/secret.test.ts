import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ClusterSecret,
  generateSecretText,
  loadSecret,
  mac,
  resolveSecretSource,
  sameBytes,
  SecretError,
} from "./secret.js";

const TEXT = "0123456789abcdef0123456789abcdef";

test("a secret is at least 32 characters after trimming, at most 4096", () => {
  assert.ok(ClusterSecret.parse(TEXT) instanceof ClusterSecret);
  assert.ok(ClusterSecret.parse(`  ${TEXT}\n`) instanceof ClusterSecret);
  const short = ClusterSecret.parse(`  ${TEXT.slice(1)}  \n`);
  assert.ok(short instanceof SecretError);
  assert.match(short.message, /too short \(31 characters, at least 32\)/);
  assert.ok(ClusterSecret.parse("x".repeat(4097)) instanceof SecretError);
});

test("each purpose gets its own key; the same secret gives the same keys; trimming does not matter", () => {
  const a = ClusterSecret.parse(TEXT) as ClusterSecret;
  const b = ClusterSecret.parse(`${TEXT}\n`) as ClusterSecret;
  const other = ClusterSecret.parse(TEXT.replace("0", "1")) as ClusterSecret;
  assert.equal(a.key("sc-link").length, 32);
  assert.deepEqual(a.key("sc-link"), b.key("sc-link"));
  assert.notDeepEqual(a.key("sc-link"), a.key("admin-token"));
  assert.notDeepEqual(a.key("sc-link"), other.key("sc-link"));
  assert.match(a.adminToken(), /^[0-9a-f]{64}$/);
  assert.notEqual(a.adminToken(), other.adminToken());
});

test("mac length-prefixes its parts, so fields cannot slide into each other", () => {
  const k = Buffer.alloc(32, 1);
  assert.notDeepEqual(mac(k, "ab", "c"), mac(k, "a", "bc"));
  assert.deepEqual(mac(k, "ab", Buffer.from("c")), mac(k, "ab", "c"));
  assert.ok(sameBytes(mac(k, "x"), mac(k, "x")));
  assert.ok(!sameBytes(mac(k, "x"), mac(k, "y")));
  assert.ok(!sameBytes(mac(k, "x"), mac(k, "x").subarray(0, 16)));
});

test("generated secrets are 256 random bits in hex and parse", () => {
  const t = generateSecretText();
  assert.match(t, /^[0-9a-f]{64}$/);
  assert.notEqual(t, generateSecretText());
  assert.ok(ClusterSecret.parse(t) instanceof ClusterSecret);
});

test("source: --secret-file, then $SC_CLUSTER_SECRET_FILE, then $SC_CLUSTER_SECRET", () => {
  const env = { SC_CLUSTER_SECRET_FILE: "/e", SC_CLUSTER_SECRET: TEXT };
  assert.deepEqual(resolveSecretSource("/o", env), { kind: "file", path: "/o", from: "option" });
  assert.deepEqual(resolveSecretSource(undefined, env), { kind: "file", path: "/e", from: "env" });
  assert.deepEqual(resolveSecretSource(undefined, { SC_CLUSTER_SECRET: TEXT }), {
    kind: "value",
    text: TEXT,
  });
  assert.deepEqual(resolveSecretSource(undefined, {}), { kind: "none" });
});

test("loadSecret reads a file and says what is wrong with it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sc-secret-"));
  try {
    const good = join(dir, "good");
    await writeFile(good, `${TEXT}\n`);
    const s = await loadSecret({ kind: "file", path: good, from: "option" });
    assert.ok(s instanceof ClusterSecret);
    assert.equal(s.adminToken(), (ClusterSecret.parse(TEXT) as ClusterSecret).adminToken());

    const bad = join(dir, "bad");
    await writeFile(bad, "short\n");
    const e1 = await loadSecret({ kind: "file", path: bad, from: "env" });
    assert.ok(e1 instanceof SecretError);
    assert.match(e1.message, /\$SC_CLUSTER_SECRET_FILE .*bad: the cluster secret is too short/);

    const e2 = await loadSecret({ kind: "file", path: join(dir, "missing"), from: "option" });
    assert.ok(e2 instanceof SecretError);
    assert.match(e2.message, /cannot read --secret-file .*missing/);

    const e3 = await loadSecret({ kind: "file", path: dir, from: "option" });
    assert.ok(e3 instanceof SecretError);
    assert.match(e3.message, /is not a file/);

    const huge = join(dir, "huge");
    await writeFile(huge, "x".repeat(1 << 20));
    const e4 = await loadSecret({ kind: "file", path: huge, from: "option" });
    assert.ok(e4 instanceof SecretError);
    assert.match(e4.message, /too large for a secret/);

    assert.equal(await loadSecret({ kind: "none" }), null);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
