// Writes a prepared response to any transport connection, outside the connection pipeline:
// for a mode that answers on a socket it manages itself (e.g. Socket Cloning's receiving node,
// which must know the response's exact length before it writes: PreparedResponse.length).
import type { Conn } from "../transport/conn.js";
import type { PreparedResponse } from "./response.js";

/** Resolves once every byte has been handed to `conn` (after 'drain's as needed). */
export async function sendPrepared(conn: Conn, resp: PreparedResponse): Promise<void> {
  const drained = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        conn.removeListener("drain", done);
        conn.removeListener("close", done);
        resolve();
      };
      conn.on("drain", done);
      conn.on("close", done);
    });
  let ok = conn.write(resp.head);
  if (resp.body !== null) ok = conn.write(resp.body);
  if (resp.stream !== null) {
    const { doc, start, end } = resp.stream;
    for await (const chunk of doc.read!(start, end)) {
      if (conn.destroyed) return;
      if (!ok) await drained();
      ok = conn.write(chunk);
    }
  }
  if (!ok && !conn.destroyed) await drained();
}
