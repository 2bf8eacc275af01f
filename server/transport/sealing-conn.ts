// One TLS response written outside the session's own record layer: by a clone on another node,
// or by the original resuming a failed clone's response. A Conn over the TCP socket that seals
// what is written in the layout both nodes compute (sc/tls/sealed-stream.ts), so the response's
// records, sequence numbers and wire length are known to the original from its length alone.
import { EventEmitter } from "node:events";
import type { StreamSealer } from "../../sc/tls/sealed-stream.js";
import type { Conn } from "./conn.js";

export class SealingConn extends EventEmitter implements Conn {
  private released = false;

  constructor(
    private readonly socket: Conn,
    private readonly sealer: StreamSealer,
    /** Sealed bytes the client already has (a resume from inside a record): not sent again. */
    private skip = 0,
  ) {
    super();
    socket.on("drain", this.onDrain);
    socket.on("close", this.onClose);
    socket.on("error", this.onError);
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }
  get writableLength(): number {
    return this.socket.writableLength;
  }
  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  write(chunk: Uint8Array, cb?: (err?: Error | null) => void): boolean {
    if (this.socket.destroyed || this.released) {
      cb?.(new Error("connection closed"));
      return false;
    }
    return this.socket.write(this.unsent(this.sealer.push(chunk)), cb);
  }

  /**
   * Seals the last record (and close_notify if the layout has it) and stops following the
   * socket; the socket stays open (the original's connection goes on).
   */
  flush(): void {
    if (this.released) return;
    this.release();
    if (this.socket.destroyed) this.sealer.wipe();
    else this.socket.write(this.unsent(this.sealer.finish()));
  }

  /** flush(), then the socket's end() (a clone's: FIN only when it was delegated). */
  end(): void {
    this.flush();
    if (!this.socket.destroyed) this.socket.end();
  }

  destroy(error?: Error): void {
    this.release();
    this.sealer.wipe();
    this.socket.destroy(error);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Drops the first `skip` sealed bytes (once). */
  private unsent(sealed: Buffer): Buffer {
    if (this.skip === 0) return sealed;
    const n = Math.min(this.skip, sealed.length);
    this.skip -= n;
    return sealed.subarray(n);
  }

  private release(): void {
    this.released = true;
    this.socket.removeListener("drain", this.onDrain);
    this.socket.removeListener("close", this.onClose);
    this.socket.removeListener("error", this.onError);
  }

  private readonly onDrain = (): void => {
    this.emit("drain");
  };
  private readonly onClose = (): void => {
    this.sealer.wipe();
    this.emit("close");
  };
  private readonly onError = (err: Error): void => {
    if (this.listenerCount("error") > 0) this.emit("error", err);
  };
}
