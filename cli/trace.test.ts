// The commands that read a trace, run as processes: a trace that yields nothing to replay
// exits 1 with its first bad lines and the reason (site used to exit 0 with an empty root),
// `trace stats` shows every format's count on the first lines, and --json-fields reaches
// the JSON reader.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "../server/node/testing.js";
import { fixture } from "../loadgen/test-support.js";

const BIN = fileURLToPath(new URL("../../bin/sc-cluster.js", import.meta.url));
const cli = (...args: string[]) => run(process.execPath, [BIN, ...args], 60_000);
const VARIANT = fixture("nasa-variant.tsv");

let dir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), `sc-trace-cli-${process.pid}-`));
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The first bad lines and the way out, as every command reports a trace with nothing to replay. */
function assertNothingToReplay(stderr: string): void {
  assert.match(
    stderr,
    /nothing to replay in '.*nasa-variant\.tsv' \(format clf\): 8 lines, 0 records, 8 bad lines \(syntax 8\)/,
  );
  assert.match(stderr, /bad line 1 \(syntax\): host\tlogname/);
  assert.match(stderr, /bad line 2 \(syntax\): 199\.72\.81\.55\t-\t807249601/);
  assert.match(stderr, /give --format/);
}

test("site: a trace with nothing to replay exits 1 with its first bad lines, writing no manifest", async () => {
  const manifest = join(dir, "empty.jsonl");
  const r = await cli(
    "site",
    "--trace",
    VARIANT,
    "--format",
    "clf",
    "--out",
    join(dir, "empty", "root"),
    "--manifest",
    manifest,
  );
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assertNothingToReplay(r.stderr);
  assert.equal(existsSync(manifest), false);
  // The root (and the parent it had to create) are removed again: nothing left behind.
  assert.equal(existsSync(join(dir, "empty")), false);
});

test("loadgen: a trace with nothing to replay exits 1 with its first bad lines, before any request", async () => {
  // Port 9 (discard) on loopback: nothing may be sent, the run must end before connecting.
  const r = await cli("loadgen", "--trace", VARIANT, "--format", "clf", "--target", "http://127.0.0.1:9");
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assertNothingToReplay(r.stderr);
});

test("trace stats: every format's count on the first lines; exit 1 when nothing would replay", async () => {
  const ok = await cli("trace", "stats", "--trace", VARIANT);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^format {4}nasa-tsv \(detected\)$/m);
  assert.match(ok.stdout, /^detection each format on the first 8 lines:$/m);
  assert.match(ok.stdout, /^ {2}nasa-tsv {2}7 records, 1 ignored, 0 bad$/m);
  assert.match(ok.stdout, /^ {2}clf {7}0 records, 0 ignored, 8 bad; first bad: line 1 \(syntax\)$/m);
  assert.match(ok.stdout, /^ {2}w3c {7}0 records, 0 ignored, 8 bad; first bad: line 1 \(no_header\)$/m);
  assert.match(ok.stdout, /^replay {4}get 5, conditional 1, head 1$/m);

  const given = await cli("trace", "stats", "--trace", VARIANT, "--format", "clf");
  assert.equal(given.code, 1);
  assert.match(given.stdout, /^format {4}clf \(given\)$/m);
  assert.match(given.stdout, /^ {2}nasa-tsv {2}7 records/m, "the guesses show what would have worked");
  assertNothingToReplay(given.stderr);

  const junk = join(dir, "junk.txt");
  writeFileSync(junk, "hello\nworld\n");
  const none = await cli("trace", "stats", "--trace", junk);
  assert.equal(none.code, 1);
  assert.match(none.stdout, /^format {4}none detected$/m);
  assert.match(none.stdout, /^ {2}urls {6}0 records, 0 ignored, 2 bad; first bad: line 1 \(bad_url\)$/m);
  assert.match(
    none.stderr,
    /cannot detect the format of '.*junk\.txt': no format parses any of its first 2 lines/,
  );
});

test("--json-fields points the JSON reader at other names; wrong maps are usage errors", async () => {
  const trace = join(dir, "custom.jsonl");
  writeFileSync(trace, '{"verb":"GET","where":{"path":"/a.html"},"code":200,"len":5,"ts":807249601}\n');
  const plain = await cli("trace", "stats", "--trace", trace, "--format", "json");
  assert.equal(plain.code, 1, "the default names find no method or url");
  const mapped = await cli(
    "trace",
    "stats",
    "--trace",
    trace,
    "--json-fields",
    "method=verb,url=where.path,status=code,bytes=len",
  );
  assert.equal(mapped.code, 0, mapped.stderr);
  assert.match(mapped.stdout, /^format {4}json \(detected\)$/m);
  assert.match(mapped.stdout, /^statuses {2}200 1$/m);
  const wrong = await cli("trace", "stats", "--trace", trace, "--json-fields", "colour=x");
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /--json-fields: 'colour=x' is not FIELD=PATH/);
  const notJson = await cli(
    "site",
    "--trace",
    trace,
    "--format",
    "clf",
    "--json-fields",
    "url=a",
    "--out",
    "x",
    "--manifest",
    "y",
  );
  assert.equal(notJson.code, 2);
  assert.match(notJson.stderr, /--json-fields is for --format json/);
});
