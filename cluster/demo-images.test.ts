import { test } from "node:test";
import assert from "node:assert/strict";
import { inflateSync } from "node:zlib";
import { crc32, demoImages, encodePng, gradient, mandelbrot } from "./demo-images.js";

interface Chunk {
  type: string;
  data: Buffer;
  crc: number;
}

/** Splits a PNG into its chunks (what a decoder reads first). */
function chunks(png: Buffer): Chunk[] {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const out: Chunk[] = [];
  let at = 8;
  while (at < png.length) {
    const len = png.readUInt32BE(at);
    out.push({
      type: png.toString("latin1", at + 4, at + 8),
      data: png.subarray(at + 8, at + 8 + len),
      crc: png.readUInt32BE(at + 8 + len),
    });
    at += 12 + len;
  }
  assert.equal(at, png.length);
  return out;
}

test("crc32 matches the CRC-32/ISO-HDLC check value", () => {
  assert.equal(crc32(Buffer.from("123456789")), 0xcbf43926);
  assert.equal(crc32(Buffer.alloc(0)), 0);
  // Every PNG ends with the same IEND chunk, CRC ae426082.
  assert.equal(crc32(Buffer.from("IEND")), 0xae426082);
});

test("encodePng writes IHDR, IDAT and IEND with valid CRCs and the exact pixels", () => {
  const rgb = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const png = encodePng({ width: 3, height: 2, rgb });
  const cs = chunks(png);
  assert.deepEqual(
    cs.map((c) => c.type),
    ["IHDR", "IDAT", "IEND"],
  );
  for (const c of cs) assert.equal(c.crc, crc32(Buffer.concat([Buffer.from(c.type, "latin1"), c.data])));
  const ihdr = cs[0]!.data;
  assert.equal(ihdr.readUInt32BE(0), 3);
  assert.equal(ihdr.readUInt32BE(4), 2);
  assert.deepEqual([...ihdr.subarray(8)], [8, 2, 0, 0, 0]);
  const raw = inflateSync(cs[1]!.data);
  assert.deepEqual([...raw], [0, ...rgb.subarray(0, 9), 0, ...rgb.subarray(9)]);
  assert.equal(cs[2]!.data.length, 0);
});

test("encodePng refuses a pixel buffer of the wrong size", () => {
  assert.throws(() => encodePng({ width: 2, height: 2, rgb: new Uint8Array(11) }), RangeError);
  assert.throws(() => encodePng({ width: 0, height: 2, rgb: new Uint8Array(0) }), RangeError);
});

test("pictures are deterministic and fill every pixel", () => {
  assert.deepEqual(mandelbrot(40, 30).rgb, mandelbrot(40, 30).rgb);
  const g = gradient(16, 8);
  assert.equal(g.rgb.length, 16 * 8 * 3);
  assert.deepEqual([...g.rgb.subarray(0, 3)], [0, 0, 255]); // top left
  assert.deepEqual([...g.rgb.subarray(g.rgb.length - 3)], [255, 255, 0]); // bottom right
});

test("the demo images are the same bytes every time, and the two big ones are above the clone threshold", () => {
  const a = demoImages();
  const b = demoImages();
  assert.deepEqual([...a.keys()], ["/img/mandelbrot.png", "/img/plasma.png", "/img/gradient.png"]);
  for (const [path, bytes] of a) assert.ok(bytes.equals(b.get(path)!), path);
  // Documents up to 4096 bytes are served where they arrive (--clone-local-max-bytes); these
  // should make a page view clone.
  assert.ok(a.get("/img/mandelbrot.png")!.length > 4096);
  assert.ok(a.get("/img/plasma.png")!.length > 4096);
});
