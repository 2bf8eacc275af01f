import { test } from "node:test";
import assert from "node:assert/strict";
import { TlsSession, HS_NEW_SESSION_TICKET, type SessionEvent } from "./session.js";
import { CIPHER_SUITES, TLS_AES_128_GCM_SHA256, type CipherSuite } from "./suites.js";
import { ContentType, direction, sealRecord, type TlsError } from "./record.js";
import { hex, RFC8448 } from "./rfc8448.js";

const AES128 = TLS_AES_128_GCM_SHA256;

/** A server session and a client session over the same secrets (each reads what the other writes). */
function pair(suite: CipherSuite = AES128, opts: { maxFragment?: number; padding?: number } = {}) {
  const c = Buffer.alloc(suite.hashLength, 0x11);
  const s = Buffer.alloc(suite.hashLength, 0x22);
  const server = new TlsSession({ suite, read: { secret: c, seq: 0 }, write: { secret: s, seq: 0 } }, opts);
  const client = new TlsSession({ suite, read: { secret: s, seq: 0 }, write: { secret: c, seq: 0 } }, opts);
  return { server, client };
}

function data(events: SessionEvent[]): Buffer {
  return Buffer.concat(events.flatMap((e) => (e.kind === "data" ? [e.data] : [])));
}

test("a client session reads RFC 8448's server records: ticket, data, close_notify", () => {
  const client = new TlsSession({
    suite: AES128,
    read: { secret: RFC8448.serverApTraffic, seq: 0 },
    write: { secret: RFC8448.clientApTraffic, seq: 0 },
  });
  const ev = client.receive(
    Buffer.concat([RFC8448.serverTicketRecord, RFC8448.serverDataRecord, RFC8448.serverAlertRecord]),
  );
  assert.deepEqual(
    ev.map((e) => e.kind),
    ["handshake", "data", "close_notify"],
  );
  assert.equal(ev[0]!.kind === "handshake" && ev[0]!.msgType, HS_NEW_SESSION_TICKET);
  assert.deepEqual(data(ev), RFC8448.applicationData);
  // And writes the client's records of the trace byte for byte.
  assert.deepEqual(client.seal(RFC8448.applicationData), RFC8448.clientDataRecord);
  assert.deepEqual(client.closeNotify(), RFC8448.clientAlertRecord);
  assert.throws(() => client.seal(Buffer.from("x")), /after close_notify/);
});

test("a server session taken over after its ticket (write sequence 1) continues RFC 8448's stream", () => {
  const server = new TlsSession({
    suite: AES128,
    read: { secret: RFC8448.clientApTraffic, seq: 0 },
    write: { secret: RFC8448.serverApTraffic, seq: 1 },
  });
  const ev = server.receive(RFC8448.clientDataRecord);
  assert.deepEqual(data(ev), RFC8448.applicationData);
  assert.deepEqual(server.seal(RFC8448.applicationData), RFC8448.serverDataRecord);
  assert.deepEqual(server.closeNotify(), RFC8448.serverAlertRecord);
  assert.equal(server.writeSeq, 3);
  assert.deepEqual(
    server.receive(RFC8448.clientAlertRecord).map((e) => e.kind),
    ["close_notify"],
  );
});

test("seal splits at maxFragment and applies padding; the peer reads it back whole", () => {
  for (const suite of CIPHER_SUITES) {
    const { server, client } = pair(suite, { maxFragment: 1000, padding: 3 });
    const body = Buffer.alloc(4321);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
    const wire = server.seal(body);
    assert.equal(server.writeSeq, 5);
    assert.equal(wire.length, body.length + 5 * (5 + 1 + 3 + 16));
    // Delivered in awkward pieces.
    const got: SessionEvent[] = [];
    for (let off = 0; off < wire.length; off += 333)
      got.push(...client.receive(wire.subarray(off, off + 333)));
    assert.deepEqual(data(got), body);
    assert.equal(client.readSeq, 5);
  }
});

test("KeyUpdate with update_requested: the peer rekeys reading, and its next write carries its own KeyUpdate", () => {
  const { server, client } = pair();
  client.receive(server.seal(Buffer.from("before")));
  const ku = client.keyUpdate(true);
  const ev = server.receive(Buffer.concat([ku, client.seal(Buffer.from("after client update"))]));
  assert.deepEqual(
    ev.map((e) => e.kind),
    ["key_update", "data"],
  );
  assert.equal(ev[0]!.kind === "key_update" && ev[0]!.requested, true);
  assert.equal(data(ev).toString(), "after client update");
  assert.equal(server.readSeq, 1, "sequence numbers restart at 0 under the new key");
  // The server owes its KeyUpdate: it goes before its next data, under the old key.
  const wire = server.seal(Buffer.from("reply"));
  assert.equal(server.writeSeq, 1);
  const back = client.receive(wire);
  assert.deepEqual(
    back.map((e) => e.kind),
    ["key_update", "data"],
  );
  assert.equal(back[0]!.kind === "key_update" && back[0]!.requested, false);
  assert.equal(data(back).toString(), "reply");
  // A record under the old key after the update does not authenticate.
  const stale = new TlsSession({
    suite: AES128,
    read: { secret: Buffer.alloc(32, 0x22), seq: 0 },
    write: { secret: Buffer.alloc(32, 0x11), seq: 2 },
  });
  const bad = server.receive(stale.seal(Buffer.from("old key")));
  assert.equal(bad[0]!.kind, "error");
});

test("a KeyUpdate without update_requested owes nothing back", () => {
  const { server, client } = pair();
  server.receive(client.keyUpdate(false));
  const before = server.writeSeq;
  client.receive(server.seal(Buffer.from("x")));
  assert.equal(server.writeSeq, before + 1);
});

test("at the suite's record limit the writer updates its keys by itself", () => {
  const suite = { ...AES128, recordLimit: 3 };
  const { server, client } = pair(suite);
  const wire = server.seal(Buffer.alloc(5 * 100, 1).subarray(0, 5)); // one record
  client.receive(wire);
  const many = server.seal(Buffer.alloc(16384 * 3, 2)); // records 1, 2, then update, then 0
  const ev = client.receive(many);
  assert.deepEqual(
    ev.map((e) => e.kind),
    ["data", "data", "key_update", "data"],
  );
  assert.equal(server.writeSeq, 1);
  assert.equal(data(ev).length, 16384 * 3);
});

test("bad input yields one error event with its alert, and nothing more is read", () => {
  const { server, client } = pair();
  const rec = client.seal(Buffer.from("hello"));
  const bad = Buffer.from(rec);
  bad[bad.length - 1]! ^= 0x80;
  const ev = server.receive(Buffer.concat([bad, client.seal(Buffer.from("more"))]));
  assert.equal(ev.length, 1);
  assert.equal(ev[0]!.kind, "error");
  assert.equal((ev[0] as { error: TlsError }).error.alert, "bad_record_mac");
  assert.deepEqual(server.receive(rec), [], "a failed session reads nothing");
  // The alert to send is a sealed record the client can read.
  const alert = server.alert("bad_record_mac");
  const back = client.receive(alert);
  assert.deepEqual(back, [{ kind: "alert", alert: 20 }]);
});

test("post-handshake messages: fragmented across records reassemble; interleaving and junk are refused", () => {
  const suite = AES128;
  const c = Buffer.alloc(32, 0x11);
  const s = Buffer.alloc(32, 0x22);
  const raw = direction(suite, c);
  const server = new TlsSession({ suite, read: { secret: c, seq: 0 }, write: { secret: s, seq: 0 } });
  // A KeyUpdate cut in two records.
  const ku = hex("18 00 00 01 00");
  const ev = server.receive(
    Buffer.concat([
      sealRecord(raw, ContentType.Handshake, ku.subarray(0, 2)),
      sealRecord(raw, ContentType.Handshake, ku.subarray(2)),
    ]),
  );
  assert.deepEqual(ev, [{ kind: "key_update", requested: false }]);

  const refuse = (records: Buffer[], alert: string) => {
    const d = direction(suite, c);
    const srv = new TlsSession({ suite, read: { secret: c, seq: 0 }, write: { secret: s, seq: 0 } });
    const out = srv.receive(Buffer.concat(records.map((r) => sealRecord(d, ContentType.Handshake, r))));
    const last = out[out.length - 1]!;
    assert.equal(last.kind, "error");
    assert.equal((last as { error: TlsError }).error.alert, alert);
  };
  refuse([hex("18 00 00 02 00 00")], "decode_error"); // KeyUpdate of length 2
  refuse([hex("18 00 00 01 02")], "decode_error"); // request_update 2
  refuse([hex("18 00 00 01 00 17 00 00 00")], "unexpected_message"); // data after KeyUpdate in its record
  refuse([Buffer.alloc(0)], "unexpected_message"); // empty handshake record
  // A fragment, then application data before the rest.
  const d = direction(suite, c);
  const srv = new TlsSession({ suite, read: { secret: c, seq: 0 }, write: { secret: s, seq: 0 } });
  const out = srv.receive(
    Buffer.concat([
      sealRecord(d, ContentType.Handshake, ku.subarray(0, 2)),
      sealRecord(d, ContentType.ApplicationData, Buffer.from("x")),
    ]),
  );
  assert.equal((out[0] as { error: TlsError }).error.alert, "unexpected_message");
  // Wrong inner types: change_cipher_spec inside a protected record.
  const d2 = direction(suite, c);
  const srv2 = new TlsSession({ suite, read: { secret: c, seq: 0 }, write: { secret: s, seq: 0 } });
  const o2 = srv2.receive(sealRecord(d2, ContentType.ChangeCipherSpec, hex("01")));
  assert.equal((o2[0] as { error: TlsError }).error.alert, "unexpected_message");
});

test("after close_notify the rest of the input is ignored; writing still works until ours", () => {
  const { server, client } = pair();
  const ev = server.receive(Buffer.concat([client.closeNotify()]));
  assert.deepEqual(ev, [{ kind: "close_notify" }]);
  const more = new TlsSession({
    suite: AES128,
    read: { secret: Buffer.alloc(32, 0x22), seq: 0 },
    write: { secret: Buffer.alloc(32, 0x11), seq: 1 },
  });
  assert.deepEqual(server.receive(more.seal(Buffer.from("late"))), []);
  const reply = server.seal(Buffer.from("bye"));
  assert.equal(data(client.receive(reply)).toString(), "bye");
});

test("write state hand-over: a clone seals the next records, the original continues after them", () => {
  const { server, client } = pair();
  client.receive(server.seal(Buffer.from("response 1 from the original")));
  const st = server.writeState();
  // The clone: a session with the same write secret and sequence (it reads nothing).
  const clone = new TlsSession(
    {
      suite: st.suite,
      read: { secret: Buffer.alloc(32), seq: 0 },
      write: { secret: st.secret, seq: st.seq },
    },
    { maxFragment: 1000 },
  );
  const cloned = clone.seal(Buffer.alloc(2500, 0x42));
  assert.equal(clone.writeSeq, st.seq + 3);
  assert.equal(data(client.receive(cloned)).length, 2500);
  // The original moves past what the clone sent; its next record is accepted.
  const end = clone.writeState();
  server.advanceWrite({ secret: end.secret, seq: end.seq });
  assert.equal(data(client.receive(server.seal(Buffer.from("response 3")))).toString(), "response 3");
  assert.throws(() => server.advanceWrite({ secret: end.secret, seq: 0 }), /goes back/);
  // A clone that rekeyed hands back the new secret.
  const clone2 = new TlsSession({
    suite: AES128,
    read: { secret: Buffer.alloc(32), seq: 0 },
    write: { ...server.writeState() },
  });
  const w = Buffer.concat([clone2.keyUpdate(false), clone2.seal(Buffer.from("under the new key"))]);
  assert.equal(data(client.receive(w)).toString(), "under the new key");
  server.advanceWrite(clone2.writeState());
  assert.equal(data(client.receive(server.seal(Buffer.from("next")))).toString(), "next");
});

test("wipe zeroes the secrets and ends the session", () => {
  const { server } = pair();
  const st = server.writeState();
  server.wipe();
  assert.throws(() => server.seal(Buffer.from("x")));
  assert.deepEqual(server.receive(Buffer.alloc(10)), []);
  // writeState() handed out a copy; the wiped session's own secret is zeros now.
  assert.ok(st.secret.some((b) => b !== 0));
  assert.ok(server.writeState().secret.every((b) => b === 0));
});
