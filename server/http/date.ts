// The Date header line, formatted once per second (the clock is passed in).
import { httpDate } from "./validators.js";

export class DateCache {
  private second = -1;
  private line: Buffer = Buffer.alloc(0);

  /** "Date: <IMF-fixdate>\r\n" for the second containing nowMs. */
  dateLine(nowMs: number): Buffer {
    const s = Math.floor(nowMs / 1000);
    if (s !== this.second) {
      this.second = s;
      this.line = Buffer.from(`Date: ${httpDate(s * 1000)}\r\n`, "latin1");
    }
    return this.line;
  }
}
