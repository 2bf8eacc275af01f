// Splits decoded trace text into lines across chunk boundaries. Pure and bounded, and linear
// however the text is chunked: the partial line grows by concatenation (a rope, flattened once
// when the line is parsed) and the newline search never goes back over text already searched.
// A line longer than `maxLine` is dropped while it streams and comes out as `overlongMarker`.

const NO_LINES: readonly string[] = [];

export class LineSplitter {
  /** The current partial line. */
  private pending = "";
  /** The current line passed maxLine: its text is being dropped up to its end. */
  private overlong = false;

  constructor(
    private readonly maxLine: number,
    private readonly overlongMarker: string,
  ) {}

  /** The lines `text` completes, without their "\n" (and a "\r" before it). */
  push(text: string): readonly string[] {
    let nl = text.indexOf("\n");
    if (nl === -1) {
      this.keep(text);
      return NO_LINES;
    }
    const out: string[] = [];
    let start = 0;
    for (; nl !== -1; nl = text.indexOf("\n", start)) {
      out.push(this.take(text.slice(start, nl)));
      start = nl + 1;
    }
    this.keep(text.slice(start));
    return out;
  }

  /** The last line when the text did not end with "\n" (none otherwise). */
  end(): readonly string[] {
    return this.overlong || this.pending.length > 0 ? [this.take("")] : NO_LINES;
  }

  private keep(piece: string): void {
    if (this.overlong) return;
    this.pending += piece;
    if (this.pending.length > this.maxLine) {
      this.overlong = true;
      this.pending = "";
    }
  }

  /** The pending line completed by `last`; resets for the next line. */
  private take(last: string): string {
    if (this.overlong) {
      this.overlong = false;
      return this.overlongMarker;
    }
    const line = this.pending + last;
    this.pending = "";
    return line.charCodeAt(line.length - 1) === 13 ? line.slice(0, -1) : line;
  }
}
