// Helpers shared by the loadgen tests: fixture paths, temporary directories and small
// misbehaving HTTP servers on loopback. Not used by the product.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (tests run from dist/loadgen/...). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

export function fixture(name: string): string {
  return join(REPO_ROOT, "loadgen", "fixtures", name);
}

/** The shared NASA trace (see ../shared/traces/README.md); SC_NASA_TRACE overrides. */
export const NASA_TRACE =
  process.env.SC_NASA_TRACE ??
  // Next to the checkout, as in the development workspace; else the workspace's fixed place
  // (a clean clone made elsewhere, e.g. by CI).
  [resolve(REPO_ROOT, "../shared/traces/nasa.log"), "/work/shared/traces/nasa.log"].find((p) =>
    existsSync(p),
  ) ??
  resolve(REPO_ROOT, "../shared/traces/nasa.log");

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), `sc-loadgen-${process.pid}-`));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface RawServer {
  url: string;
  /** Connections accepted so far. */
  readonly connections: number;
  close(): Promise<void>;
}

/**
 * A TCP server on 127.0.0.1 that hands every connection to `onRequest` once a full request
 * head has arrived, for servers that must misbehave in ways node:http will not.
 */
export async function rawHttpServer(onRequest: (socket: Socket, head: string) => void): Promise<RawServer> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    let buf = "";
    socket.on("data", (d) => {
      buf += d.toString("latin1");
      let end: number;
      while ((end = buf.indexOf("\r\n\r\n")) >= 0) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        onRequest(socket, head);
      }
    });
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((res) => {
        for (const s of sockets) s.destroy();
        server.close(() => res());
      }),
  };
}
