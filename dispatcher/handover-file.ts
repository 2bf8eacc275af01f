// The dispatcher's state file (handover.ts): read once at start, before the first packet, and
// rewritten (to a temporary file, then renamed: a kill -9 mid-write leaves the previous one)
// whenever the displaced connections change, at most every WRITE_INTERVAL_MS.
import { readFileSync } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import type { Forwarder } from "./forwarder.js";
import { decodeHandover, encodeHandover } from "./handover.js";

const WRITE_INTERVAL_MS = 200;

export class HandoverFile {
  private timer: NodeJS.Timeout | undefined;
  private written = -1;
  private writing: Promise<void> | undefined;
  /** Writes that failed (disk full, directory gone); the next change retries. */
  writeErrors = 0;

  constructor(
    private readonly path: string,
    private readonly forwarder: Forwarder,
    private readonly log: (message: string, fields?: Record<string, unknown>) => void,
  ) {}

  /** Adopts the previous dispatcher's connections (none without a file), then keeps the file. */
  start(now: number): void {
    let text = "";
    try {
      text = readFileSync(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
        this.log("state file unreadable, starting without it", {
          path: this.path,
          error: (err as Error).message,
        });
      }
    }
    const { connections, skipped } = decodeHandover(text, this.forwarder.displaced.max);
    const adopted = this.forwarder.adopt(connections, now);
    if (text !== "") this.log("state file read", { path: this.path, adopted, skipped });
    this.written = this.forwarder.displaced.version;
    this.timer = setInterval(() => this.flush(), WRITE_INTERVAL_MS);
  }

  private flush(): void {
    const version = this.forwarder.displaced.version;
    if (this.writing !== undefined || version === this.written) return;
    const tmp = `${this.path}.tmp`;
    this.writing = writeFile(tmp, encodeHandover(this.forwarder.displaced.list()))
      .then(() => rename(tmp, this.path))
      .then(
        () => {
          this.written = version;
        },
        (err: Error) => {
          // Retried at the next change; logged the first time and every 100th.
          if (this.writeErrors++ % 100 === 0) {
            this.log("state file not written", {
              path: this.path,
              error: err.message,
              errors: this.writeErrors,
            });
          }
        },
      )
      .finally(() => {
        this.writing = undefined;
      });
  }

  /** Stops writing (the last complete file stays for the next start). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.writing;
  }
}
