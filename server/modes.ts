// The hook through which a cluster mode sees each parsed request before it is served locally.
//
// The connection calls decide() for one request at a time, in order, and only once every
// earlier response has been written to the transport (ctx.flushed() waits until it has left
// the send buffer too). What decide() returns:
//   "serve"   serve it here (the local path);
//   "done"    the mode answered it itself (e.g. Socket Cloning: the clone on the mapped node sent
//             the response); the pipeline moves on to the next request; if the request was not
//             keep-alive the connection is then closed gracefully;
//   { doc }   answer with this document (e.g. cooperative caching: fetched from the mapped
//             peer's cache), with the usual conditional/range rules;
//   a Promise of one of these: the connection's pipeline is paused until it settles (later
//             requests stay queued in the parser, unread input stays in the socket), then
//             continues with the settled value; a rejection answers 500 and closes.
import type { Conn } from "./conn.js";
import type { HttpRequest } from "./http/parser.js";
import type { Doc } from "./cache/doc.js";

export type Decision = "serve" | "done" | { doc: Doc };

/** What a mode may do with the connection a request arrived on. */
export interface ConnectionControl {
  /** Per-process connection number (for logs and mode bookkeeping). */
  readonly id: number;
  /** The transport connection (socket) itself, e.g. to export its TCP state for cloning. */
  readonly conn: Conn;
  /** Resolves when everything written so far has left the send buffer (writableLength 0). */
  flushed(): Promise<void>;
}

export interface Mode {
  readonly name: string;
  /** `req.raw` holds the request head bytes exactly as received. */
  decide(req: HttpRequest, ctx: ConnectionControl): Decision | Promise<Decision>;
}

/** --mode local: every request is served by the node it arrived at (RR with an L4 dispatcher). */
export const localMode: Mode = {
  name: "local",
  decide: () => "serve",
};

export const MODES: Record<string, Mode> = { local: localMode };
