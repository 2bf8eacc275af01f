import { test } from "node:test";
import assert from "node:assert/strict";
import { LineSplitter } from "./lines.js";
import { Prng } from "../../sc/wire/testing.js";

const MARK = "<too long>";

/** Every line of `chunks` pushed in order, then end(). */
function split(chunks: string[], maxLine = 100): string[] {
  const s = new LineSplitter(maxLine, MARK);
  return [...chunks.flatMap((c) => s.push(c)), ...s.end()];
}

test("lines across chunks: CRLF split between chunks, a last line without newline, empty lines", () => {
  assert.deepEqual(split(["a\r", "\nb", "c\n\n", "d"]), ["a", "bc", "", "d"]);
  assert.deepEqual(split(["a\n"]), ["a"]);
  assert.deepEqual(split(["\r"]), [""]);
  assert.deepEqual(split([]), []);
  assert.deepEqual(split(["a\rb\n"]), ["a\rb"], "only a CR right before the newline is removed");
});

test("a line longer than the limit becomes the marker, and the next line is whole", () => {
  assert.deepEqual(split(["x".repeat(60), "x".repeat(60), "y\nok\n"]), [MARK, "ok"]);
  assert.deepEqual(split(["x".repeat(60), "x".repeat(60)]), [MARK]);
  // Exactly the limit is kept; a line completed inside one chunk is passed whole (the parser
  // rejects it by its length).
  assert.deepEqual(split(["x".repeat(100), "\n"]), ["x".repeat(100)]);
  assert.deepEqual(split(["x".repeat(150) + "\n"]), ["x".repeat(150)]);
});

test("any chunking gives the lines of a plain split", () => {
  const rng = new Prng(3);
  for (let k = 0; k < 2000; k++) {
    let text = "";
    for (let n = rng.below(40); n > 0; n--) text += rng.pick(["a", "b", "\r", "\n", "\r\n", "é"]);
    const chunks: string[] = [];
    for (let i = 0; i < text.length;) {
      const len = 1 + rng.below(6);
      chunks.push(text.slice(i, i + len));
      i += len;
    }
    const want = text.split("\n").map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
    if (text.endsWith("\n") || text === "") want.pop();
    assert.deepEqual(split(chunks), want, JSON.stringify(chunks));
  }
});
