// The SC link handshake and per-message protection (protocol version 4; byte layouts in
// docs/sc-protocol.md). Pure: no I/O; nonces are passed in, so tests can replay a session.
//
//   server -> client  CHALLENGE(auth, Ns, server id)
//   client -> server  HELLO(auth, Nc, client id, MAC(K, "hello", ids, Ns, Nc))
//   server -> client  HELLO-ACK(MAC(K, "hello-ack", ids, Ns, Nc))
//
// K is the cluster secret's "sc-link" key. Both MACs bind both node ids and both fresh
// nonces, so a HELLO recorded from one session is useless in the next (the server's nonce
// changed) and a server that does not hold K cannot answer (mutual authentication: a fake
// server collects no clones). Each direction then gets its own AES-256-GCM key derived from K
// and the transcript. Every later message is encrypted in place from byte 8 on (clone id and
// body: the request bytes and TCP state of a CLONE) and followed by the 16-byte GCM tag; the
// first 8 bytes (magic, version, type, length) stay in clear for the framer and are the
// associated data. The nonce is the implicit sequence number (0, 1, 2, ... per direction), so
// a message replayed, dropped or reordered within the session fails its tag, and one from
// another session fails under the other session's key. A direction stops at
// SC_LINK_MAX_MESSAGES (the transport closes the link, the next one has fresh keys), far below
// where the 64-bit counter in the nonce could wrap.
//
// With --insecure-dev both ends say so explicitly (auth byte 1) and use no MACs, no
// encryption and no tags; a node with a secret refuses such a peer and an insecure node
// refuses a secure one, so a misconfigured member is a clear, counted refusal instead of a
// silently unprotected link.
import { loadAddon, type NativeAeadHandle } from "../tun/addon.js";
import { mac, sameBytes, type ClusterTrust } from "./secret.js";
import {
  ScAuth,
  ScType,
  SC_HANDSHAKE_MAC_LEN,
  SC_NONCE_LEN,
  SC_TAG_LEN,
  type ChallengeMessage,
  type HelloAckMessage,
  type HelloMessage,
} from "../clone/message.js";

/** What a link authenticates with: the cluster secret's SC link key, or nothing (--insecure-dev). */
export type LinkKey = { kind: "secret"; key: Uint8Array } | { kind: "insecure-dev" };

export function linkKey(trust: ClusterTrust): LinkKey {
  return trust.kind === "secret" ? { kind: "secret", key: trust.secret.key("sc-link") } : trust;
}

/** Why a handshake was refused (counted by the transport, which closes the connection). */
export type HandshakeRefusal =
  /** The HELLO names a node that is not a configured peer (or names this node). */
  | "unknown-peer"
  /** The HELLO names a peer, but the connection comes from another address. */
  | "wrong-address"
  /** A HELLO or HELLO-ACK MAC does not verify: another secret, or a forgery or replay. */
  | "bad-mac"
  /** The peer runs --insecure-dev and this node has a secret. */
  | "peer-insecure"
  /** This node runs --insecure-dev and the peer has a secret. */
  | "peer-secure"
  /** The CHALLENGE comes from another node than the one this link was opened to. */
  | "wrong-server";

/** The transport's membership and source-address check for a claimed peer id. */
export type Admission = (peerId: string) => "unknown-peer" | "wrong-address" | null;

const LABEL = "sc-link v2";
const ZERO_MAC = new Uint8Array(SC_HANDSHAKE_MAC_LEN);

function authOf(k: LinkKey): ScAuth {
  return k.kind === "secret" ? ScAuth.Secret : ScAuth.Insecure;
}

/** The refusal when the peer's auth variant differs from ours, else null. */
function authMismatch(k: LinkKey, peer: ScAuth): HandshakeRefusal | null {
  if (peer === authOf(k)) return null;
  return peer === ScAuth.Insecure ? "peer-insecure" : "peer-secure";
}

/** Both ids and both nonces, in a fixed order, for every MAC and key of the session. */
export interface Transcript {
  clientId: string;
  serverId: string;
  serverNonce: Uint8Array;
  clientNonce: Uint8Array;
}

function transcriptMac(key: Uint8Array, what: string, t: Transcript): Buffer {
  return mac(key, `${LABEL} ${what}`, t.clientId, t.serverId, t.serverNonce, t.clientNonce);
}

function checkNonce(nonce: Uint8Array): void {
  if (nonce.length !== SC_NONCE_LEN) throw new RangeError(`a nonce must be ${SC_NONCE_LEN} bytes`);
}

/** The accepting side of one connection. */
export class ServerHandshake {
  readonly challenge: ChallengeMessage;

  /** `maxMessages`: per direction under the session's keys (ScLinkLimits.maxMessagesPerKey). */
  constructor(
    private readonly key: LinkKey,
    private readonly selfId: string,
    nonce: Uint8Array,
    private readonly maxMessages = SC_LINK_MAX_MESSAGES,
  ) {
    checkNonce(nonce);
    this.challenge = { type: ScType.Challenge, auth: authOf(key), nonce, nodeId: selfId };
  }

  /**
   * Checks the client's HELLO: its auth variant, then who it claims to be (membership and
   * source address, by `admit`), then its MAC. On success: the HELLO-ACK to send and the
   * session (tags start with the next message in each direction).
   */
  onHello(
    hello: HelloMessage,
    admit: Admission,
  ): { peerId: string; reply: HelloAckMessage; session: LinkSession } | { refused: HandshakeRefusal } {
    const mismatch = authMismatch(this.key, hello.auth);
    if (mismatch !== null) return { refused: mismatch };
    if (hello.nodeId === this.selfId) return { refused: "unknown-peer" };
    const who = admit(hello.nodeId);
    if (who !== null) return { refused: who };
    const t: Transcript = {
      clientId: hello.nodeId,
      serverId: this.selfId,
      serverNonce: this.challenge.nonce,
      clientNonce: hello.nonce,
    };
    const k = this.key;
    if (k.kind === "insecure-dev") {
      return {
        peerId: hello.nodeId,
        reply: { type: ScType.HelloAck, mac: ZERO_MAC },
        session: LinkSession.insecure(),
      };
    }
    if (!sameBytes(hello.mac, transcriptMac(k.key, "hello", t))) return { refused: "bad-mac" };
    return {
      peerId: hello.nodeId,
      reply: { type: ScType.HelloAck, mac: transcriptMac(k.key, "hello-ack", t) },
      session: LinkSession.secure(k.key, t, "server", this.maxMessages),
    };
  }
}

/** The connecting side of one connection, opened to the peer `serverId`. */
export class ClientHandshake {
  private transcript: Transcript | null = null;

  constructor(
    private readonly key: LinkKey,
    private readonly selfId: string,
    private readonly serverId: string,
    private readonly nonce: Uint8Array,
    private readonly maxMessages = SC_LINK_MAX_MESSAGES,
  ) {
    checkNonce(nonce);
  }

  /** Answers the server's CHALLENGE with a HELLO, or refuses a server that is not the peer. */
  onChallenge(ch: ChallengeMessage): { hello: HelloMessage } | { refused: HandshakeRefusal } {
    const mismatch = authMismatch(this.key, ch.auth);
    if (mismatch !== null) return { refused: mismatch };
    if (ch.nodeId !== this.serverId) return { refused: "wrong-server" };
    const t: Transcript = {
      clientId: this.selfId,
      serverId: this.serverId,
      serverNonce: ch.nonce,
      clientNonce: this.nonce,
    };
    this.transcript = t;
    const k = this.key;
    return {
      hello: {
        type: ScType.Hello,
        auth: authOf(k),
        nonce: this.nonce,
        mac: k.kind === "secret" ? transcriptMac(k.key, "hello", t) : ZERO_MAC,
        nodeId: this.selfId,
      },
    };
  }

  /** Verifies the server's HELLO-ACK (it proves the server holds the secret). */
  onHelloAck(ack: HelloAckMessage): { session: LinkSession } | { refused: HandshakeRefusal } {
    const t = this.transcript;
    if (t === null) throw new Error("HELLO-ACK before CHALLENGE"); // the transport orders them
    const k = this.key;
    if (k.kind === "insecure-dev") return { session: LinkSession.insecure() };
    if (!sameBytes(ack.mac, transcriptMac(k.key, "hello-ack", t))) return { refused: "bad-mac" };
    return { session: LinkSession.secure(k.key, t, "client", this.maxMessages) };
  }
}

/**
 * Bytes at the start of every message that stay in clear on a secure link, authenticated as
 * the AEAD's associated data: magic, version, type (the framers check them before buffering a
 * frame) and the total length (framing needs it). The clone id and the body are encrypted.
 */
export const SC_CLEAR_LEN = 8;

/**
 * Messages one direction of a session may carry. AES-GCM with unique nonces stays well inside
 * its usage bounds here (2^32 messages of at most 32 KiB: under 2^43 blocks); a busy link
 * (100 000 clones/s) reaches it after about 12 hours, closes and comes back with fresh keys.
 */
export const SC_LINK_MAX_MESSAGES = 2 ** 32;

const AEAD = "aes-256-gcm";
const NONCE_LEN = 12;

/** Per-direction AEAD contexts and sequence numbers of a secure link (nothing when insecure). */
export class LinkSession {
  private sendSeq = 0;
  private recvSeq = 0;
  /** The nonces, rewritten for each message (the sequence number in bytes 4-11). */
  private readonly sendNonce = Buffer.alloc(NONCE_LEN);
  private readonly recvNonce = Buffer.alloc(NONCE_LEN);
  // One OpenSSL context per direction, keyed once (the addon's aead.c): per message only the
  // nonce changes, where node:crypto would build a new cipher object (~10x the time here).
  private readonly sealer: NativeAeadHandle | null;
  private readonly opener: NativeAeadHandle | null;

  private constructor(
    keys: { send: Uint8Array; recv: Uint8Array } | null,
    private readonly maxMessages: number,
  ) {
    if (keys === null) {
      this.sealer = this.opener = null;
    } else {
      const { AeadHandle } = loadAddon();
      this.sealer = new AeadHandle(AEAD, keys.send, true, SC_TAG_LEN);
      this.opener = new AeadHandle(AEAD, keys.recv, false, SC_TAG_LEN);
    }
  }

  /** The session after a secure handshake. */
  static secure(
    key: Uint8Array,
    t: Transcript,
    side: "client" | "server",
    maxMessages = SC_LINK_MAX_MESSAGES,
  ): LinkSession {
    // Lower only: above the default, GCM's margins shrink (and past 2^53 nonces would repeat).
    if (!Number.isInteger(maxMessages) || maxMessages < 1 || maxMessages > SC_LINK_MAX_MESSAGES)
      throw new RangeError(`maxMessages must be 1..${SC_LINK_MAX_MESSAGES}`);
    // Distinct labels from the handshake MACs and from versions 2-3's tag keys.
    const c2s = transcriptMac(key, "client-to-server aes-256-gcm key", t);
    const s2c = transcriptMac(key, "server-to-client aes-256-gcm key", t);
    return new LinkSession(
      side === "client" ? { send: c2s, recv: s2c } : { send: s2c, recv: c2s },
      maxMessages,
    );
  }

  static insecure(): LinkSession {
    return new LinkSession(null, Infinity);
  }

  /** Bytes of tag after each message (0 on an insecure link). */
  get tagLength(): number {
    return this.sealer === null ? 0 : SC_TAG_LEN;
  }

  /** True once this side has sent all the messages its key may carry: close the link. */
  get exhausted(): boolean {
    return this.sendSeq >= this.maxMessages;
  }

  /**
   * Encrypts `message` in place from byte SC_CLEAR_LEN on and returns its tag (empty when
   * insecure). Throws once exhausted (the transport checks `exhausted` first).
   */
  seal(message: Uint8Array): Uint8Array {
    if (this.sealer === null) return EMPTY;
    if (this.exhausted) throw new RangeError("SC link key exhausted: close the link");
    checkLength(message);
    const tag = Buffer.allocUnsafe(SC_TAG_LEN);
    this.sealer.seal(nonceOf(this.sendNonce, this.sendSeq++), SC_CLEAR_LEN, message, tag);
    return tag;
  }

  /**
   * Decrypts `message` in place if `tag` is right for the next message received under this
   * direction's key; the sequence moves on only then. False leaves `message` as it was.
   */
  open(message: Uint8Array, tag: Uint8Array): boolean {
    if (this.opener === null) return tag.length === 0;
    if (this.recvSeq >= this.maxMessages || tag.length !== SC_TAG_LEN || message.length < SC_CLEAR_LEN)
      return false;
    if (!this.opener.open(nonceOf(this.recvNonce, this.recvSeq), SC_CLEAR_LEN, message, tag)) return false;
    this.recvSeq++;
    return true;
  }

  /** Frees both directions' contexts (and their key schedules) now; the session is unusable after. */
  destroy(): void {
    this.sealer?.destroy();
    this.opener?.destroy();
  }
}

function checkLength(message: Uint8Array): void {
  if (message.length < SC_CLEAR_LEN) throw new RangeError(`an SC message has at least ${SC_CLEAR_LEN} bytes`);
}

/** 4 zero bytes and the 64-bit big-endian sequence number (safe integers: below 2^53), into `n`. */
function nonceOf(n: Buffer, seq: number): Buffer {
  n.writeUInt32BE(Math.floor(seq / 0x100000000), 4);
  n.writeUInt32BE(seq >>> 0, 8);
  return n;
}

const EMPTY = new Uint8Array(0);
