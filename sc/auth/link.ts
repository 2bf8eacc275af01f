// The SC link handshake and per-message integrity (protocol version 2; byte layouts in
// docs/sc-protocol.md). Pure: no I/O; nonces are passed in, so tests can replay a session.
//
//   server -> client  CHALLENGE(auth, Ns, server id)
//   client -> server  HELLO(auth, Nc, client id, MAC(K, "hello", ids, Ns, Nc))
//   server -> client  HELLO-ACK(MAC(K, "hello-ack", ids, Ns, Nc))
//
// K is the cluster secret's "sc-link" key. Both MACs bind both node ids and both fresh
// nonces, so a HELLO recorded from one session is useless in the next (the server's nonce
// changed) and a server that does not hold K cannot answer (mutual authentication: a fake
// server collects no clones). Each direction then gets its own session key derived from K
// and the transcript; every later message is followed by a 16-byte tag, HMAC-SHA-256 under
// that key over (sequence number, message bytes), truncated. Sequence numbers are implicit
// (0, 1, 2, ... per direction), so a message replayed, dropped or reordered within the
// session fails its tag, and one from another session fails under the other session's key.
//
// With --insecure-dev both ends say so explicitly (auth byte 1) and use no MACs or tags; a
// node with a secret refuses such a peer and an insecure node refuses a secure one, so a
// misconfigured member is a clear, counted refusal instead of a silently unprotected link.
import { createHmac } from "node:crypto";
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

  constructor(
    private readonly key: LinkKey,
    private readonly selfId: string,
    nonce: Uint8Array,
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
      session: LinkSession.secure(k.key, t, "server"),
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
    return { session: LinkSession.secure(k.key, t, "client") };
  }
}

/** Per-direction keys and sequence numbers of an authenticated link (nothing when insecure). */
export class LinkSession {
  private sendSeq = 0;
  private recvSeq = 0;
  private readonly seqBuf = Buffer.alloc(8);

  private constructor(
    private readonly sendKey: Uint8Array | null,
    private readonly recvKey: Uint8Array | null,
  ) {}

  static secure(key: Uint8Array, t: Transcript, side: "client" | "server"): LinkSession {
    const c2s = transcriptMac(key, "client-to-server", t);
    const s2c = transcriptMac(key, "server-to-client", t);
    return side === "client" ? new LinkSession(c2s, s2c) : new LinkSession(s2c, c2s);
  }

  static insecure(): LinkSession {
    return new LinkSession(null, null);
  }

  /** Bytes of tag after each message (0 on an insecure link). */
  get tagLength(): number {
    return this.sendKey === null ? 0 : SC_TAG_LEN;
  }

  /** The tag for the next message sent (empty when insecure). */
  seal(message: Uint8Array): Uint8Array {
    if (this.sendKey === null) return EMPTY;
    return this.tag(this.sendKey, this.sendSeq++, message);
  }

  /** True if `tag` is right for the next message received; the sequence moves on only then. */
  open(message: Uint8Array, tag: Uint8Array): boolean {
    if (this.recvKey === null) return tag.length === 0;
    if (!sameBytes(tag, this.tag(this.recvKey, this.recvSeq, message))) return false;
    this.recvSeq++;
    return true;
  }

  private tag(key: Uint8Array, seq: number, message: Uint8Array): Uint8Array {
    // 64-bit big-endian; a link never sends 2^53 messages.
    this.seqBuf.writeUInt32BE(Math.floor(seq / 0x100000000), 0);
    this.seqBuf.writeUInt32BE(seq >>> 0, 4);
    return createHmac("sha256", key).update(this.seqBuf).update(message).digest().subarray(0, SC_TAG_LEN);
  }
}

const EMPTY = new Uint8Array(0);
