// A TLS 1.3 connection after its handshake, as a record layer (kTLS-style): traffic secrets
// and sequence numbers in, application bytes out and back, KeyUpdate in both directions,
// close_notify and alerts as values. Pure: the caller moves the bytes (a socket, a test, or a
// clone on another node) and decides what to do with each event.
import type { CipherSuite } from "./suites.js";
import {
  ALERTS,
  ContentType,
  direction,
  isTlsError,
  MAX_FRAGMENT,
  openRecord,
  RecordFramer,
  rekey,
  sealRecord,
  TlsError,
  wipeDirection,
  type AlertName,
  type Direction,
} from "./record.js";

/** Handshake message types that may follow the handshake (RFC 8446 4.6). */
export const HS_NEW_SESSION_TICKET = 4;
export const HS_KEY_UPDATE = 24;
const KEY_UPDATE_NOT_REQUESTED = 0;
const KEY_UPDATE_REQUESTED = 1;
const ALERT_LEVEL_WARNING = 1;
const ALERT_LEVEL_FATAL = 2;
/** Largest post-handshake message reassembled across records (a KeyUpdate is 5 bytes). */
const MAX_HANDSHAKE_MESSAGE = MAX_FRAGMENT;

/** What the peer's records said, in order. */
export type SessionEvent =
  | { readonly kind: "data"; readonly data: Buffer }
  /** The peer's close_notify: it sends no more (what follows is ignored). */
  | { readonly kind: "close_notify" }
  /** The peer's KeyUpdate; the read keys have changed; `requested`: ours follows our next write. */
  | { readonly kind: "key_update"; readonly requested: boolean }
  /** Another post-handshake message (e.g. NewSessionTicket, for a client): type and body. */
  | { readonly kind: "handshake"; readonly msgType: number; readonly body: Buffer }
  /** The peer's fatal alert (or user_canceled): the connection is over. */
  | { readonly kind: "alert"; readonly alert: number }
  /** Input we refuse: send `alert(error.alert)` and close. Nothing more is read. */
  | { readonly kind: "error"; readonly error: TlsError };

export interface SessionKeys {
  readonly suite: CipherSuite;
  /** The peer's current application traffic secret and the sequence number of its next record. */
  readonly read: { readonly secret: Uint8Array; readonly seq: number };
  /** Ours. */
  readonly write: { readonly secret: Uint8Array; readonly seq: number };
}

export interface SessionOptions {
  /** Application bytes per record (at most 2^14; smaller fits a record in fewer segments). */
  maxFragment?: number;
  /** Zero bytes of padding in every record we seal (hides exact lengths; RFC 8446 5.4). */
  padding?: number;
}

/** The write side's state, as a clone needs it to go on sealing records of this session. */
export interface WriteState {
  readonly suite: CipherSuite;
  readonly secret: Buffer;
  readonly seq: number;
}

export class TlsSession {
  private readonly read: Direction;
  private readonly write: Direction;
  private readonly framer = new RecordFramer();
  private readonly maxFragment: number;
  private readonly padding: number;
  /** Post-handshake message bytes waiting for the rest of the message. */
  private handshakeBuf: Buffer | null = null;
  /** The peer asked for a KeyUpdate: ours goes out before our next record. */
  private keyUpdateOwed = false;
  private readState: "open" | "closed" | "failed" = "open";
  private writeClosed = false;

  constructor(keys: SessionKeys, opts: SessionOptions = {}) {
    this.read = direction(keys.suite, keys.read.secret, keys.read.seq);
    this.write = direction(keys.suite, keys.write.secret, keys.write.seq);
    this.maxFragment = opts.maxFragment ?? MAX_FRAGMENT;
    this.padding = opts.padding ?? 0;
    if (!(this.maxFragment >= 1 && this.maxFragment <= MAX_FRAGMENT))
      throw new RangeError(`maxFragment must be 1..${MAX_FRAGMENT}`);
  }

  get suite(): CipherSuite {
    return this.write.suite;
  }

  /** Sequence number of the next record we seal / expect. */
  get writeSeq(): number {
    return this.write.seq;
  }

  get readSeq(): number {
    return this.read.seq;
  }

  /** Records can still be sealed (no close_notify or alert sent, here or by a clone). */
  get writeOpen(): boolean {
    return !this.writeClosed;
  }

  /** The peer asked for a KeyUpdate that has not gone out yet (it goes before our next record). */
  get keyUpdatePending(): boolean {
    return this.keyUpdateOwed;
  }

  /** Received bytes held until their record is whole. */
  get buffered(): number {
    return this.framer.buffered;
  }

  /** Takes bytes from the peer; returns what their complete records said. */
  receive(bytes: Uint8Array): SessionEvent[] {
    const events: SessionEvent[] = [];
    if (this.readState !== "open") return events;
    const records = this.framer.push(bytes);
    if (isTlsError(records)) return this.fail(events, records);
    for (const r of records) {
      const inner = openRecord(this.read, r);
      if (isTlsError(inner)) return this.fail(events, inner);
      const err = this.dispatch(inner.type, inner.content, events);
      if (err !== null) return this.fail(events, err);
      if (this.readState !== "open") break; // close_notify or a fatal alert: the rest is ignored
    }
    return events;
  }

  /**
   * Seals application bytes into records (at most maxFragment each). A KeyUpdate the peer asked
   * for, or one the record limit calls for, goes first.
   */
  seal(data: Uint8Array): Buffer {
    this.checkWritable();
    const parts: Buffer[] = [];
    this.owedKeyUpdate(parts);
    for (let off = 0; off < data.length; off += this.maxFragment) {
      if (this.write.seq >= this.write.suite.recordLimit) parts.push(this.sealKeyUpdate(false));
      const chunk = data.subarray(off, Math.min(data.length, off + this.maxFragment));
      parts.push(sealRecord(this.write, ContentType.ApplicationData, chunk, this.padding));
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** Our KeyUpdate (RFC 8446 4.6.3); `requestPeer`: the peer must update its keys too. */
  keyUpdate(requestPeer: boolean): Buffer {
    this.checkWritable();
    this.keyUpdateOwed = false;
    return this.sealKeyUpdate(requestPeer);
  }

  /** Our close_notify; nothing can be sealed after it. */
  closeNotify(): Buffer {
    return this.alert("close_notify");
  }

  /** An alert record (close_notify and user_canceled are warnings, the rest fatal); writing ends. */
  alert(name: AlertName): Buffer {
    this.checkWritable();
    const level =
      name === "close_notify" || name === "user_canceled" ? ALERT_LEVEL_WARNING : ALERT_LEVEL_FATAL;
    const rec = sealRecord(this.write, ContentType.Alert, Uint8Array.of(level, ALERTS[name]));
    this.writeClosed = true;
    return rec;
  }

  /** The write side as a clone continues it (secret, not keys: it derives them itself). */
  writeState(): WriteState {
    return { suite: this.write.suite, secret: Buffer.from(this.write.secret), seq: this.write.seq };
  }

  /**
   * Another record layer (a clone) sealed records of this session: our write side moves to
   * where it stopped (its secret after any KeyUpdate it sent, and its next sequence number).
   */
  advanceWrite(to: { secret: Uint8Array; seq: number }): void {
    if (to.secret.length !== this.write.suite.hashLength || !Number.isSafeInteger(to.seq) || to.seq < 0)
      throw new RangeError("advanceWrite: bad secret or sequence number");
    const same = Buffer.compare(Buffer.from(to.secret), this.write.secret) === 0;
    if (same && to.seq < this.write.seq) throw new RangeError("advanceWrite: the sequence number goes back");
    const next = direction(this.write.suite, to.secret, to.seq);
    wipeDirection(this.write);
    this.write.secret = next.secret;
    this.write.keys = next.keys;
    this.write.seq = next.seq;
  }

  /** Another record layer (a clone) sent this session's close_notify: nothing more is sealed here. */
  endWrite(): void {
    this.writeClosed = true;
    this.keyUpdateOwed = false;
  }

  /** Overwrites every secret and key; the session is unusable afterwards. */
  wipe(): void {
    wipeDirection(this.read);
    wipeDirection(this.write);
    this.readState = "failed";
    this.writeClosed = true;
  }

  private checkWritable(): void {
    if (this.writeClosed) throw new Error("TLS session: writing after close_notify or an alert");
  }

  private owedKeyUpdate(parts: Buffer[]): void {
    if (!this.keyUpdateOwed) return;
    this.keyUpdateOwed = false;
    parts.push(this.sealKeyUpdate(false));
  }

  private sealKeyUpdate(requestPeer: boolean): Buffer {
    const msg = Uint8Array.of(
      HS_KEY_UPDATE,
      0,
      0,
      1,
      requestPeer ? KEY_UPDATE_REQUESTED : KEY_UPDATE_NOT_REQUESTED,
    );
    const rec = sealRecord(this.write, ContentType.Handshake, msg);
    rekey(this.write); // the KeyUpdate itself goes under the old key
    return rec;
  }

  private fail(events: SessionEvent[], error: TlsError): SessionEvent[] {
    this.readState = "failed";
    events.push({ kind: "error", error });
    return events;
  }

  /** One opened record; a TlsError refuses it (and everything after). */
  private dispatch(type: ContentType, content: Buffer, events: SessionEvent[]): TlsError | null {
    if (this.handshakeBuf !== null && type !== ContentType.Handshake)
      return new TlsError("unexpected_message", "record interleaved with a fragmented handshake message");
    switch (type) {
      case ContentType.ApplicationData:
        if (content.length > 0) events.push({ kind: "data", data: content });
        return null;
      case ContentType.Alert:
        if (content.length !== 2) return new TlsError("decode_error", "alert of the wrong length");
        if (content[1] === ALERTS.close_notify) {
          this.readState = "closed";
          events.push({ kind: "close_notify" });
        } else {
          this.readState = "failed";
          events.push({ kind: "alert", alert: content[1]! });
        }
        return null;
      case ContentType.Handshake:
        return this.handshake(content, events);
      default:
        return new TlsError("unexpected_message", `record of content type ${type} after the handshake`);
    }
  }

  private handshake(content: Buffer, events: SessionEvent[]): TlsError | null {
    if (content.length === 0) return new TlsError("unexpected_message", "empty handshake record");
    let buf = this.handshakeBuf === null ? content : Buffer.concat([this.handshakeBuf, content]);
    this.handshakeBuf = null;
    while (buf.length >= 4) {
      const len = (buf[1]! << 16) | (buf[2]! << 8) | buf[3]!;
      if (len > MAX_HANDSHAKE_MESSAGE)
        return new TlsError("unexpected_message", `handshake message of ${len} bytes`);
      if (buf.length < 4 + len) break;
      const msgType = buf[0]!;
      const body = buf.subarray(4, 4 + len);
      buf = buf.subarray(4 + len);
      if (msgType === HS_KEY_UPDATE) {
        if (len !== 1 || body[0]! > KEY_UPDATE_REQUESTED)
          return new TlsError("decode_error", "malformed KeyUpdate");
        // The next record comes under the new key: a KeyUpdate must end its record.
        if (buf.length !== 0)
          return new TlsError("unexpected_message", "data after a KeyUpdate in its record");
        rekey(this.read);
        const requested = body[0] === KEY_UPDATE_REQUESTED;
        if (requested && !this.writeClosed) this.keyUpdateOwed = true;
        events.push({ kind: "key_update", requested });
      } else events.push({ kind: "handshake", msgType, body: Buffer.from(body) });
    }
    if (buf.length > 0) this.handshakeBuf = Buffer.from(buf);
    return null;
  }
}
