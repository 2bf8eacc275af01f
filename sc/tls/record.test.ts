import { test } from "node:test";
import assert from "node:assert/strict";
import {
  deriveSecret,
  hkdfExtract,
  hkdfExpandLabel,
  hkdfLabel,
  nextTrafficSecret,
  trafficKeys,
  transcriptHash,
} from "./key-schedule.js";
import {
  ContentType,
  direction,
  isTlsError,
  MAX_FRAGMENT,
  openRecord,
  RecordFramer,
  recordNonce,
  sealRecord,
  TlsError,
  type InnerPlaintext,
} from "./record.js";
import { CIPHER_SUITES, cipherSuite, TLS_AES_128_GCM_SHA256 } from "./suites.js";
import { hex, RFC8448 } from "./rfc8448.js";

const AES128 = TLS_AES_128_GCM_SHA256;

function opened(v: InnerPlaintext | TlsError): InnerPlaintext {
  if (isTlsError(v)) assert.fail(`record refused: ${v.toString()}`);
  return v;
}

test("HkdfLabel is the RFC 8446 7.1 structure (RFC 8448's info for the traffic key)", () => {
  // {server} derive write traffic keys: "info (13 octets): 00 10 09 74 6c 73 31 33 20 6b 65 79 00".
  assert.deepEqual(hkdfLabel("key", new Uint8Array(0), 16), hex("00 10 09 74 6c 73 31 33 20 6b 65 79 00"));
  assert.deepEqual(hkdfLabel("iv", new Uint8Array(0), 12), hex("00 0c 08 74 6c 73 31 33 20 69 76 00"));
});

test("key schedule: RFC 8448 section 3 secrets from the ECDHE share and the transcript hashes", () => {
  const early = hkdfExtract("sha256", new Uint8Array(0), Buffer.alloc(32));
  assert.equal(early.toString("hex"), RFC8448.earlySecret.toString("hex"));
  const empty = transcriptHash("sha256");
  const derived = deriveSecret("sha256", early, "derived", empty);
  assert.equal(derived.toString("hex"), RFC8448.derivedForHandshake.toString("hex"));
  const hs = hkdfExtract("sha256", derived, RFC8448.ecdhe);
  assert.equal(hs.toString("hex"), RFC8448.handshakeSecret.toString("hex"));
  const cHs = deriveSecret("sha256", hs, "c hs traffic", RFC8448.helloHash);
  const sHs = deriveSecret("sha256", hs, "s hs traffic", RFC8448.helloHash);
  assert.equal(cHs.toString("hex"), RFC8448.clientHsTraffic.toString("hex"));
  assert.equal(sHs.toString("hex"), RFC8448.serverHsTraffic.toString("hex"));
  const derived2 = deriveSecret("sha256", hs, "derived", empty);
  assert.equal(derived2.toString("hex"), RFC8448.derivedForMaster.toString("hex"));
  const master = hkdfExtract("sha256", derived2, Buffer.alloc(32));
  assert.equal(master.toString("hex"), RFC8448.masterSecret.toString("hex"));
  const cAp = deriveSecret("sha256", master, "c ap traffic", RFC8448.serverFinishedHash);
  const sAp = deriveSecret("sha256", master, "s ap traffic", RFC8448.serverFinishedHash);
  assert.equal(cAp.toString("hex"), RFC8448.clientApTraffic.toString("hex"));
  assert.equal(sAp.toString("hex"), RFC8448.serverApTraffic.toString("hex"));
});

test("traffic keys and IVs: RFC 8448 section 3, handshake and application, both sides", () => {
  const cases: [Buffer, Buffer, Buffer][] = [
    [RFC8448.serverHsTraffic, RFC8448.serverHsKey, RFC8448.serverHsIv],
    [RFC8448.clientHsTraffic, RFC8448.clientHsKey, RFC8448.clientHsIv],
    [RFC8448.serverApTraffic, RFC8448.serverApKey, RFC8448.serverApIv],
    [RFC8448.clientApTraffic, RFC8448.clientApKey, RFC8448.clientApIv],
  ];
  for (const [secret, key, iv] of cases) {
    const k = trafficKeys(AES128, secret);
    assert.equal(k.key.toString("hex"), key.toString("hex"));
    assert.equal(k.iv.toString("hex"), iv.toString("hex"));
  }
});

test("the per-record nonce XORs the 64-bit sequence number into the IV's last 8 bytes", () => {
  const iv = hex("cf 78 2b 88 dd 83 54 9a ad f1 e9 84");
  assert.deepEqual(recordNonce(iv, 0), iv);
  assert.deepEqual(recordNonce(iv, 1), hex("cf 78 2b 88 dd 83 54 9a ad f1 e9 85"));
  // Past 32 bits: the high word is XORed too.
  assert.deepEqual(recordNonce(Buffer.alloc(12), 2 ** 32 + 5), hex("00 00 00 00 00 00 00 01 00 00 00 05"));
});

test("RFC 8448 records open under the derived keys with the right sequence numbers", () => {
  const server = direction(AES128, RFC8448.serverApTraffic);
  const ticket = opened(openRecord(server, RFC8448.serverTicketRecord));
  assert.equal(ticket.type, ContentType.Handshake);
  assert.equal(ticket.content[0], 4); // NewSessionTicket
  assert.equal(ticket.content.length, 4 + ticket.content.readUIntBE(1, 3));
  const data = opened(openRecord(server, RFC8448.serverDataRecord));
  assert.equal(data.type, ContentType.ApplicationData);
  assert.deepEqual(data.content, RFC8448.applicationData);
  const alert = opened(openRecord(server, RFC8448.serverAlertRecord));
  assert.equal(alert.type, ContentType.Alert);
  assert.deepEqual(alert.content, hex("01 00")); // warning, close_notify
  assert.equal(server.seq, 3);

  const client = direction(AES128, RFC8448.clientApTraffic);
  assert.deepEqual(opened(openRecord(client, RFC8448.clientDataRecord)).content, RFC8448.applicationData);
  assert.deepEqual(opened(openRecord(client, RFC8448.clientAlertRecord)).content, hex("01 00"));
});

test("sealing reproduces RFC 8448's records byte for byte", () => {
  const server = direction(AES128, RFC8448.serverApTraffic);
  const ticket = opened(openRecord(direction(AES128, RFC8448.serverApTraffic), RFC8448.serverTicketRecord));
  assert.deepEqual(sealRecord(server, ContentType.Handshake, ticket.content), RFC8448.serverTicketRecord);
  assert.deepEqual(
    sealRecord(server, ContentType.ApplicationData, RFC8448.applicationData),
    RFC8448.serverDataRecord,
  );
  assert.deepEqual(sealRecord(server, ContentType.Alert, hex("01 00")), RFC8448.serverAlertRecord);
  // A direction picked up mid-session (the take-over point) seals the same bytes.
  const resumed = direction(AES128, RFC8448.clientApTraffic, 1);
  assert.deepEqual(sealRecord(resumed, ContentType.Alert, hex("01 00")), RFC8448.clientAlertRecord);
});

test("corrupted, replayed, reordered and foreign records are refused with bad_record_mac", () => {
  const fresh = () => direction(AES128, RFC8448.serverApTraffic, 1);
  // Corrupted: any flipped bit, in the header (the additional data), the body or the tag.
  for (const at of [2, 5, 30, RFC8448.serverDataRecord.length - 1]) {
    const bad = Buffer.from(RFC8448.serverDataRecord);
    bad[at]! ^= 0x01;
    const d = fresh();
    const r = openRecord(d, bad);
    assert.ok(isTlsError(r), `bit flip at ${at}`);
    assert.equal(r.alert, "bad_record_mac"); // the header is the additional data
    assert.equal(d.seq, 1, "a refused record does not advance the sequence number");
  }
  // Replayed: the same record again is checked against the next sequence number.
  const d = fresh();
  opened(openRecord(d, RFC8448.serverDataRecord));
  const replay = openRecord(d, RFC8448.serverDataRecord);
  assert.ok(isTlsError(replay) && replay.alert === "bad_record_mac");
  // Reordered: record 2 before record 1.
  const r = fresh();
  const early = openRecord(r, RFC8448.serverAlertRecord);
  assert.ok(isTlsError(early) && early.alert === "bad_record_mac");
  // Another direction's key (the client's record read as the server's).
  const foreign = openRecord(direction(AES128, RFC8448.serverApTraffic), RFC8448.clientDataRecord);
  assert.ok(isTlsError(foreign) && foreign.alert === "bad_record_mac");
});

test("malformed records: wrong outer type, length mismatch, overflow, all-zero inner plaintext", () => {
  const d = () => direction(AES128, RFC8448.serverApTraffic, 1);
  const wrongType = Buffer.from(RFC8448.serverDataRecord);
  wrongType[0] = ContentType.Handshake;
  assert.equal((openRecord(d(), wrongType) as TlsError).alert, "unexpected_message");
  assert.equal((openRecord(d(), RFC8448.serverDataRecord.subarray(0, 40)) as TlsError).alert, "decode_error");
  const huge = Buffer.alloc(5 + 16384 + 257);
  huge[0] = 23;
  huge.writeUInt16BE(16384 + 257, 3);
  assert.equal((openRecord(d(), huge) as TlsError).alert, "record_overflow");
  const framer = new RecordFramer();
  assert.equal((framer.push(huge.subarray(0, 5)) as TlsError).alert, "record_overflow");
  // Inner plaintext of zeros only: no content type (RFC 8446 5.4).
  const w = direction(AES128, RFC8448.serverApTraffic);
  const rec = sealRecord(w, 0 as ContentType, new Uint8Array(0), 3);
  assert.equal(
    (openRecord(direction(AES128, RFC8448.serverApTraffic), rec) as TlsError).alert,
    "unexpected_message",
  );
});

test("padding is stripped; every suite round-trips at full and odd sizes", () => {
  for (const suite of CIPHER_SUITES) {
    const secret = Buffer.alloc(suite.hashLength, 7);
    const w = direction(suite, secret, 41);
    const r = direction(suite, secret, 41);
    for (const [len, pad] of [
      [0, 0],
      [1, 0],
      [1000, 13],
      [MAX_FRAGMENT, 0],
    ] as const) {
      const content = Buffer.alloc(len, 0xa5);
      const rec = sealRecord(w, ContentType.ApplicationData, content, pad);
      assert.equal(rec.length, 5 + len + 1 + pad + 16);
      const o = opened(openRecord(r, rec));
      assert.equal(o.type, ContentType.ApplicationData);
      assert.deepEqual(o.content, content);
    }
    assert.equal(cipherSuite(suite.name), suite);
    assert.equal(cipherSuite(suite.code), suite);
  }
  assert.throws(() => sealRecord(direction(AES128, Buffer.alloc(32)), 23, Buffer.alloc(MAX_FRAGMENT + 1)));
});

test("the framer returns whole records however the bytes are cut, and holds at most one", () => {
  const stream = Buffer.concat([
    RFC8448.serverTicketRecord,
    RFC8448.serverDataRecord,
    RFC8448.serverAlertRecord,
  ]);
  for (const step of [1, 7, 100, stream.length]) {
    const f = new RecordFramer();
    const got: Buffer[] = [];
    for (let off = 0; off < stream.length; off += step) {
      const r = f.push(stream.subarray(off, off + step));
      assert.ok(!isTlsError(r));
      got.push(...r.map((x) => Buffer.from(x)));
      assert.ok(f.buffered < 5 + 0xde + 16);
    }
    assert.deepEqual(got, [RFC8448.serverTicketRecord, RFC8448.serverDataRecord, RFC8448.serverAlertRecord]);
    assert.equal(f.buffered, 0);
  }
});

test("KeyUpdate: the next secret is HKDF-Expand-Label(secret, 'traffic upd', '', Hash.length)", () => {
  const next = nextTrafficSecret(AES128, RFC8448.serverApTraffic);
  assert.deepEqual(
    next,
    hkdfExpandLabel("sha256", RFC8448.serverApTraffic, "traffic upd", new Uint8Array(0), 32),
  );
  assert.equal(next.length, 32);
  assert.notDeepEqual(next, RFC8448.serverApTraffic);
});
