// `sc-cluster secret` and the trust options of `node`: a cluster mode needs a secret or an
// explicit --insecure-dev, and says how to make one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "../server/node/testing.js";
import { ClusterSecret } from "../sc/auth/secret.js";

const BIN = fileURLToPath(new URL("../../bin/sc-cluster.js", import.meta.url));
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  run(process.execPath, [BIN, ...args], 30_000, { ...withoutSecretEnv(process.env), ...env });

function withoutSecretEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { SC_CLUSTER_SECRET: _v, SC_CLUSTER_SECRET_FILE: _f, ...rest } = env;
  return rest;
}

test("secret prints a new secret, or writes a 0600 file it never overwrites", async () => {
  const a = await cli(["secret"]);
  assert.equal(a.code, 0);
  assert.match(a.stdout, /^[0-9a-f]{64}\n$/);
  const dir = await mkdtemp(join(tmpdir(), "sc-secret-cli-"));
  try {
    const f = join(dir, "s");
    assert.equal((await cli(["secret", "--out", f])).code, 0);
    assert.equal((await stat(f)).mode & 0o777, 0o600);
    const first = await readFile(f, "utf8");
    assert.match(first, /^[0-9a-f]{64}\n$/);
    const again = await cli(["secret", "--out", f]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /exists already \(not overwritten/);
    assert.equal(await readFile(f, "utf8"), first);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("node --mode sc refuses to start without a secret, with a clear way out", async () => {
  const base = ["node", "--root", "/tmp", "--mode", "sc", "--peer", "a=198.18.0.11", "--node-id", "a"];
  const none = await cli(base);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /--mode sc needs the cluster secret: --secret-file FILE/);
  assert.match(none.stderr, /sc-cluster secret --out FILE/);
  assert.match(none.stderr, /--insecure-dev/);

  const both = await cli([...base, "--insecure-dev"], { SC_CLUSTER_SECRET: "x".repeat(40) });
  assert.equal(both.code, 2);
  assert.match(both.stderr, /either a cluster secret or --insecure-dev, not both/);

  const dir = await mkdtemp(join(tmpdir(), "sc-secret-cli-"));
  try {
    const f = join(dir, "weak");
    await writeFile(f, "password\n");
    const weak = await cli([...base, "--secret-file", f]);
    assert.equal(weak.code, 2);
    assert.match(weak.stderr, /--secret-file .*weak: the cluster secret is too short \(8 characters/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("node and dispatcher --help offer --secret-file and --insecure-dev", async () => {
  for (const cmd of ["node", "dispatcher"]) {
    const r = await cli([cmd, "--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--secret-file FILE +.*\$SC_CLUSTER_SECRET_FILE/);
    assert.match(r.stdout, /--insecure-dev +.*never on a shared network/);
  }
});

test("secret --admin-token prints the token of a secret file or $SC_CLUSTER_SECRET, for curl", async () => {
  const text = "q".repeat(48);
  const expected = (ClusterSecret.parse(text) as ClusterSecret).adminToken();
  const dir = await mkdtemp(join(tmpdir(), "sc-secret-cli-"));
  try {
    const f = join(dir, "s");
    await writeFile(f, `${text}\n`);
    const a = await cli(["secret", "--admin-token", "--secret-file", f]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout, `${expected}\n`);
    const b = await cli(["secret", "--admin-token"], { SC_CLUSTER_SECRET: text });
    assert.equal(b.stdout, `${expected}\n`);
    const none = await cli(["secret", "--admin-token"]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /which secret\? Give --secret-file FILE/);
    const missing = await cli(["secret", "--admin-token", "--secret-file", join(dir, "nope")]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read --secret-file/);
    assert.equal((await cli(["secret", "--secret-file", f])).code, 2, "--secret-file without --admin-token");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("node --admin-token-file and --admin-host: checked at start, offered in --help", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sc-secret-cli-"));
  const base = ["node", "--root", dir, "--stack", "kernel", "--listen", "127.0.0.1:0"];
  try {
    const short = join(dir, "short");
    await writeFile(short, "abc\n");
    const r = await cli([...base, "--admin", "127.0.0.1:0", "--admin-token-file", short]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--admin-token-file .*short: the admin token is too short/);
    const badName = await cli([...base, "--admin", "127.0.0.1:0", "--admin-host", "evil/x"]);
    assert.equal(badName.code, 2);
    assert.match(badName.stderr, /--admin-host must be a host name/);
    for (const cmd of ["node", "dispatcher"]) {
      const h = await cli([cmd, "--help"]);
      assert.match(h.stdout, /--admin-token-file FILE +.*sc-cluster secret --admin-token/);
      assert.match(h.stdout, /--admin-host NAME +.*DNS rebinding.*\(repeatable\)/);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
