// What the connection pipeline asks of the layers above it, without knowing them: a hook that
// sees each parsed request first (a node's cluster mode, server/modes/) and a responder that
// answers it locally (server/store/responder.ts).
//
// The connection calls decide() for one request at a time, in order, and only once every
// earlier response has been written to the transport (ctx.flushed() waits until it has left
// the send buffer too). What decide() returns:
//   "serve"   serve it here (the local path);
//   "done"    the hook answered it itself (e.g. Socket Cloning: the clone on the mapped node sent
//             the response); the pipeline moves on to the next request; if the request was not
//             keep-alive the connection is then closed gracefully;
//   { doc }   answer with this document (e.g. cooperative caching: fetched from the mapped
//             peer's cache), with the usual conditional/range rules;
//   a Promise of one of these: the connection's pipeline is paused until it settles (later
//             requests stay queued in the parser, unread input stays in the socket), then
//             continues with the settled value; a rejection answers 500 and closes.
import type { Conn } from "../transport/conn.js";
import type { HttpRequest } from "./parser.js";
import type { Doc } from "./doc.js";
import type { PreparedResponse } from "./response.js";

export type Decision = "serve" | "done" | { doc: Doc };

/** What a hook may do with the connection a request arrived on. */
export interface ConnectionControl {
  /** Per-process connection number (for logs and mode bookkeeping). */
  readonly id: number;
  /** The transport connection (socket) itself, e.g. to export its TCP state for cloning. */
  readonly conn: Conn;
  /** Resolves when everything written so far has left the send buffer (writableLength 0). */
  flushed(): Promise<void>;
  /**
   * The hook had this request answered from another node (Socket Cloning: the clone's node,
   * its response head and length from the SC-ACK), for the access log; before settling "done".
   */
  servedBy?(node: string, head: Uint8Array, length: number): void;
}

export interface RequestHook {
  /** For logs. */
  readonly name: string;
  /** `req.raw` holds the request head bytes exactly as received. */
  decide(req: HttpRequest, ctx: ConnectionControl): Decision | Promise<Decision>;
}

/** Answers a request on this node. */
export interface LocalResponder {
  respond(req: HttpRequest, keepAlive: boolean, nowMs: number): PreparedResponse | Promise<PreparedResponse>;
  /** Answers with a given document (a hook's `{ doc }`), with the usual conditional/range rules. */
  respondWithDoc(req: HttpRequest, doc: Doc, keepAlive: boolean, nowMs: number): PreparedResponse;
}
