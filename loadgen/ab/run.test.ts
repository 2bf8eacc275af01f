// The single-URL run's pure phases: the options checked, the expectations and the preflight's
// verdict, each worker's share, the progress summed and what stopped the run.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  abWorkerInits,
  DEFAULT_SINGLE_URL_DURATION_S,
  expectations,
  singleUrlSettings,
  singleUrlStoppedBy,
  SingleUrlError,
  sumProgressCounts,
  type SingleUrlOptions,
} from "./run.js";
import type { DocumentEntry } from "../manifest.js";

const URL_ = "http://127.0.0.1:8080/a/doc.bin";
const settings = (o: Partial<SingleUrlOptions> = {}) => singleUrlSettings({ url: URL_, ...o });

test("singleUrlSettings: defaults, and a default duration with a note when nothing bounds the run", () => {
  assert.deepEqual(settings(), {
    path: "/a/doc.bin",
    workers: 1,
    connections: 10,
    pipelining: 1,
    timeoutMs: 10_000,
    durationS: DEFAULT_SINGLE_URL_DURATION_S,
    notes: [`no --requests or --duration: ran for ${DEFAULT_SINGLE_URL_DURATION_S} s`],
  });
  const counted = settings({ requests: 100 });
  assert.equal(counted.durationS, null);
  assert.deepEqual(counted.notes, []);
});

test("singleUrlSettings: no more connections than requests, at least one per worker, http only", () => {
  const s = settings({ requests: 3, connections: 8 });
  assert.equal(s.connections, 3);
  assert.deepEqual(s.notes, ["connections reduced to 3: no more than the requests asked for"]);
  const refuses = (o: Partial<SingleUrlOptions>, message: string) =>
    assert.throws(
      () => settings(o),
      (e: unknown) => e instanceof SingleUrlError && e.message === message,
    );
  refuses({ requests: 2, workers: 3 }, "need at least one connection per worker (3)");
  refuses({ url: "nonsense" }, "'nonsense' is not a URL");
  refuses({ url: "https://x/" }, "'https://x/': only http:// is supported");
});

const entry: DocumentEntry = {
  url: "/a/doc.bin",
  status: 200,
  doc: "/a/doc.bin",
  size: 5,
  sha256: "ab",
  kinds: ["get"],
};
const good = { status: 200, length: 5, sha256: "ab" };

test("expectations: from the manifest, the preflight's body checked by SHA-256", () => {
  assert.deepEqual(expectations({}, "/a/doc.bin", entry, good), {
    expectStatus: 200,
    expectLength: 5,
    verified: "ok",
    failure: null,
  });
  const bad = expectations({}, "/a/doc.bin", entry, { ...good, sha256: "cd" });
  assert.equal(bad.verified, "mismatch");
  assert.deepEqual(bad.failure, {
    path: "/a/doc.bin",
    method: "GET",
    failure: "sha256",
    expected: "status 200, 5 bytes, sha256 ab",
    got: "status 200, 5 bytes, sha256 cd (preflight)",
  });
});

test("expectations: without a manifest, the size seen first is expected and nothing is verified", () => {
  assert.deepEqual(expectations({}, "/x", null, { status: 200, length: 7, sha256: "z" }), {
    expectStatus: 200,
    expectLength: 7,
    verified: "unchecked",
    failure: null,
  });
  // A status other than the expected one gives no length to expect.
  assert.equal(expectations({}, "/x", null, { status: 404, length: 7, sha256: "z" }).expectLength, null);
});

test("expectations: given ones override the manifest and are checked against the preflight", () => {
  const r = expectations({ expectStatus: 404 }, "/x", null, { status: 200, length: 7, sha256: "z" });
  assert.equal(r.verified, "mismatch");
  assert.equal(r.failure?.failure, "status");
  assert.equal(r.failure?.expected, "status 404, ? bytes");
  const len = expectations({ expectLength: 8 }, "/x", null, { status: 200, length: 7, sha256: "z" });
  assert.equal(len.failure?.failure, "length");
  assert.equal(
    expectations({ expectLength: 7 }, "/x", null, { status: 200, length: 7, sha256: "z" }).verified,
    "ok",
  );
});

test("abWorkerInits: connections and requests split as evenly as they go, the first workers taking the rest", () => {
  const s = settings({ workers: 3, connections: 8, requests: 10, timeoutMs: 1_500 });
  const inits = abWorkerInits({ url: URL_, requests: 10 }, s, { expectStatus: 200, expectLength: 5 });
  assert.deepEqual(
    inits.map((i) => [i.connections, i.amount]),
    [
      [3, 4],
      [3, 3],
      [2, 3],
    ],
  );
  assert.equal(inits[0]!.timeoutS, 2);
  assert.equal(inits[0]!.durationS, 86_400); // counted: autocannon gets a day as its bound
  assert.equal(inits[0]!.progressIntervalMs, 250);
  const timed = abWorkerInits({ url: URL_ }, settings({ durationS: 3 }), {
    expectStatus: 200,
    expectLength: null,
  });
  assert.deepEqual([timed[0]!.amount, timed[0]!.durationS], [undefined, 3]);
});

test("sumProgressCounts adds the counts of every worker", () => {
  assert.deepEqual(
    sumProgressCounts([
      { requests: 1, ok: 1, errors: 0, verifyFailures: 0, bytes: 4 },
      { requests: 5, ok: 2, errors: 2, verifyFailures: 1, bytes: 8 },
    ]),
    { requests: 6, ok: 3, errors: 2, verifyFailures: 1, bytes: 12 },
  );
});

test("singleUrlStoppedBy: the abort, else the count once reached, else the duration", () => {
  assert.equal(singleUrlStoppedBy(true, 10, 10, null), "interrupted");
  assert.equal(singleUrlStoppedBy(false, 10, 10, 5), "requests");
  assert.equal(singleUrlStoppedBy(false, 10, 9, 5), "duration");
  assert.equal(singleUrlStoppedBy(false, undefined, 9, 5), "duration");
  assert.equal(singleUrlStoppedBy(false, 10, 9, null), "requests");
});
