// The transport seen by the HTTP server: a byte-stream connection and a listener that hands
// them out. node:net's Socket satisfies Conn as it is (--stack kernel); the user-space TCP
// stack (sc/tcp) provides the same shape, so the server never knows which stack it runs on.
import net from "node:net";

/**
 * A connected byte stream, the subset of node:net's Socket the server uses.
 * Contract the server relies on:
 *  - 'data' chunks are not reused or modified by the transport after they are emitted (the
 *    parser keeps views of them, e.g. HttpRequest.raw);
 *  - write() queues the bytes and returns false when the caller should wait for 'drain';
 *  - the connection is half-open capable: after 'end' (peer FIN) writes still work until end();
 *  - end() flushes queued bytes then sends FIN; destroy() drops everything (RST for TCP);
 *  - 'close' is emitted exactly once when the connection is gone, whatever the cause.
 */
export interface Conn {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  /** Bytes queued by write() and not yet handed to the network. */
  readonly writableLength: number;
  readonly destroyed: boolean;
  /** `cb` runs once this chunk (and so everything before it) has been flushed, or on error. */
  write(chunk: Uint8Array, cb?: (err?: Error | null) => void): boolean;
  end(): void;
  destroy(error?: Error): void;
  pause(): void;
  resume(): void;
  /** Optional batching of several writes into one send (writev). */
  cork?(): void;
  uncork?(): void;
  on(event: "data", listener: (chunk: Buffer) => void): unknown;
  on(event: "end" | "close" | "drain", listener: () => void): unknown;
  on(event: "error", listener: (err: Error) => void): unknown;
  removeListener(event: "data", listener: (chunk: Buffer) => void): unknown;
  removeListener(event: "end" | "close" | "drain", listener: () => void): unknown;
  removeListener(event: "error", listener: (err: Error) => void): unknown;
}

/** Hands accepted connections to the server. */
export interface ConnListener {
  /** The bound address (port resolved if 0 was asked for). */
  readonly address: { host: string; port: number };
  onConnection(handler: (conn: Conn) => void): void;
  /** Stops accepting; connections already handed out are not touched. */
  close(): Promise<void>;
  /** Releases the transport itself once every connection is gone (e.g. the TUN device). */
  dispose?(): Promise<void>;
}

export type ListenErrorCode = "EADDRINUSE" | "EADDRNOTAVAIL" | "EACCES" | string;

/** --stack kernel: node:net on the host's TCP stack. */
export async function listenKernel(host: string, port: number, backlog = 511): Promise<ConnListener> {
  const server = net.createServer({ allowHalfOpen: true, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    server.listen({ host, port, backlog }, () => {
      server.off("error", onError);
      resolve();
    });
  });
  // Errors after listening (e.g. EMFILE on accept) must not crash the process.
  server.on("error", () => undefined);
  const addr = server.address() as net.AddressInfo;
  return {
    address: { host, port: addr.port },
    onConnection(handler) {
      server.on("connection", (socket) => {
        socket.setNoDelay(true);
        handler(socket);
      });
    },
    close() {
      // Stop accepting now; server.close's callback would wait for every open connection.
      server.close();
      return Promise.resolve();
    },
  };
}
