import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  CLOSE_NOTIFY_LENGTH,
  fragmentForMss,
  RECORD_OVERHEAD,
  resumeInStream,
  sealedLength,
  sealedRecords,
  StreamSealer,
  type StreamLayout,
} from "./sealed-stream.js";
import { TlsSession, type SessionEvent } from "./session.js";
import { CIPHER_SUITES, TLS_AES_128_GCM_SHA256 } from "./suites.js";
import { RFC8448 } from "./rfc8448.js";

const AES128 = TLS_AES_128_GCM_SHA256;

function data(events: SessionEvent[]): Buffer {
  return Buffer.concat(events.flatMap((e) => (e.kind === "data" ? [e.data] : [])));
}

/** Seals `content` pushed in pieces of the given sizes (cycled). */
function sealInPieces(sealer: StreamSealer, content: Buffer, pieces: number[]): Buffer {
  const out: Buffer[] = [];
  for (let off = 0, i = 0; off < content.length; i++) {
    const n = Math.min(pieces[i % pieces.length]!, content.length - off);
    out.push(sealer.push(content.subarray(off, off + n)));
    off += n;
  }
  out.push(sealer.finish());
  return Buffer.concat(out);
}

test("the clone's layout reproduces RFC 8448's server data record and close_notify byte for byte", () => {
  const sealer = new StreamSealer(
    { suite: AES128, secret: Buffer.from(RFC8448.serverApTraffic), seq: 1 },
    { fragment: 16384, closeNotify: true },
  );
  const wire = Buffer.concat([sealer.push(RFC8448.applicationData), sealer.finish()]);
  assert.deepEqual(wire, Buffer.concat([RFC8448.serverDataRecord, RFC8448.serverAlertRecord]));
  const layout = { fragment: 16384, closeNotify: true };
  assert.equal(sealedLength(RFC8448.applicationData.length, layout), wire.length);
  assert.equal(sealedRecords(RFC8448.applicationData.length, layout), 2);
});

test("length, record count and content match the layout for any split of the input, every suite", () => {
  for (const suite of CIPHER_SUITES) {
    for (const fragment of [1000, 16384]) {
      for (const length of [1, 999, 1000, 1001, 3 * 1000 + 7, 40_000]) {
        for (const closeNotify of [false, true]) {
          const layout: StreamLayout = { fragment, closeNotify };
          const secret = randomBytes(suite.hashLength);
          const content = randomBytes(length);
          const sealer = new StreamSealer({ suite, secret, seq: 5 }, layout);
          const wire = sealInPieces(sealer, content, [1, 7, 4096, 333, 20_000]);
          const what = `${suite.name} fragment ${fragment} length ${length} close ${closeNotify}`;
          assert.equal(wire.length, sealedLength(length, layout), what);
          const reader = new TlsSession({
            suite,
            read: { secret, seq: 5 },
            write: { secret: Buffer.alloc(suite.hashLength), seq: 0 },
          });
          const events = reader.receive(wire);
          assert.deepEqual(data(events), content, what);
          assert.equal(events.at(-1)!.kind, closeNotify ? "close_notify" : "data", what);
          assert.equal(reader.readSeq, 5 + sealedRecords(length, layout), what);
          // Whole records of `fragment` bytes: each record's data event is `fragment` long but the last.
          const sizes = events.flatMap((e) => (e.kind === "data" ? [e.data.length] : []));
          assert.ok(
            sizes.slice(0, -1).every((n) => n === fragment),
            what,
          );
        }
      }
    }
  }
});

test("a resume re-seals from the record the offset falls in: the bytes are the clone's, from any offset", () => {
  const layout: StreamLayout = { fragment: 1000, closeNotify: true };
  const secret = randomBytes(32);
  const content = randomBytes(4321);
  const full = sealInPieces(new StreamSealer({ suite: AES128, secret, seq: 9 }, layout), content, [4321]);
  const record = 1000 + RECORD_OVERHEAD;
  const offsets = [0, 1, record - 1, record, record + 1, 4 * record, full.length - CLOSE_NOTIFY_LENGTH];
  for (const wireOffset of [
    ...offsets,
    full.length - CLOSE_NOTIFY_LENGTH + 3,
    full.length - 1,
    full.length,
  ]) {
    const at = resumeInStream(wireOffset, content.length, layout.fragment);
    const again = new StreamSealer({ suite: AES128, secret, seq: 9 + at.record }, layout);
    const tail = Buffer.concat([again.push(content.subarray(at.contentFrom)), again.finish()]);
    assert.deepEqual(tail.subarray(at.skip), full.subarray(wireOffset), `offset ${wireOffset}`);
  }
});

test("fits: a clone never crosses the suite's record limit (it cannot send a KeyUpdate)", () => {
  const layout: StreamLayout = { fragment: 16384, closeNotify: false };
  const limit = AES128.recordLimit;
  const state = (seq: number) => ({ suite: AES128, secret: Buffer.alloc(32), seq });
  assert.equal(StreamSealer.fits(state(0), 1_000_000, layout), true);
  assert.equal(StreamSealer.fits(state(limit - 3), 2 * 16384, layout), true);
  assert.equal(StreamSealer.fits(state(limit - 2), 2 * 16384, layout), false);
});

test("fragmentForMss: whole records fill whole segments, at most 2^14 bytes of content", () => {
  for (const mss of [536, 1220, 1448, 1460, 8960]) {
    const f = fragmentForMss(mss);
    assert.equal((f + RECORD_OVERHEAD) % mss, 0, `mss ${mss}`);
    assert.ok(f <= 16384 && f + RECORD_OVERHEAD + mss > 16384 + RECORD_OVERHEAD, `mss ${mss}: ${f}`);
  }
  assert.equal(fragmentForMss(1460), 11 * 1460 - 22);
  assert.equal(fragmentForMss(20_000), 16384, "an MSS beyond a record: the largest record");
});

test("finish wipes the secret; pushing after it is a programming error", () => {
  const secret = Buffer.alloc(32, 7);
  const sealer = new StreamSealer({ suite: AES128, secret, seq: 0 }, { fragment: 100, closeNotify: false });
  sealer.push(Buffer.alloc(50));
  sealer.finish();
  assert.throws(() => sealer.push(Buffer.alloc(1)), /after finish/);
  assert.throws(
    () => new StreamSealer({ suite: AES128, secret, seq: 0 }, { fragment: 0, closeNotify: false }),
    /fragment/,
  );
});
