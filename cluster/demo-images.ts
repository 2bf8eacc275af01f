// The demo site's raster images, computed at start-up so no binary file is committed: a
// minimal PNG encoder (8-bit RGB, no interlace, filter 0) and three deterministic pictures.
// Pure: no I/O, the same bytes on every machine.
import { deflateSync } from "node:zlib";

/** An RGB picture, 3 bytes per pixel, rows top to bottom. */
export interface Picture {
  width: number;
  height: number;
  rgb: Uint8Array;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO-HDLC, as PNG chunks and zlib use it). */
export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "latin1");
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** A PNG file of the picture (colour type 2, bit depth 8). */
export function encodePng(p: Picture): Buffer {
  if (!(p.width > 0 && p.height > 0) || p.rgb.length !== p.width * p.height * 3)
    throw new RangeError(`picture ${p.width}x${p.height} needs ${p.width * p.height * 3} bytes`);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(p.width, 0);
  ihdr.writeUInt32BE(p.height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  // compression, filter method and interlace stay 0
  const stride = p.width * 3;
  const raw = Buffer.alloc((stride + 1) * p.height);
  for (let y = 0; y < p.height; y++)
    raw.set(p.rgb.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1); // filter byte 0: none
  return Buffer.concat([
    SIGNATURE,
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw, { level: 9 })),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

function picture(width: number, height: number, pixel: (x: number, y: number) => [number, number, number]) {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) rgb.set(pixel(x, y), (y * width + x) * 3);
  return { width, height, rgb };
}

const clamp = (v: number) => Math.max(0, Math.min(255, Math.round(v)));

/** The Mandelbrot set with smooth escape-time colouring. */
export function mandelbrot(width: number, height: number, maxIter = 96): Picture {
  return picture(width, height, (px, py) => {
    const cx = -2.2 + (px / width) * 3.2;
    const cy = -1.1 + (py / height) * 2.2;
    let x = 0;
    let y = 0;
    let i = 0;
    while (x * x + y * y <= 4 && i < maxIter) {
      const t = x * x - y * y + cx;
      y = 2 * x * y + cy;
      x = t;
      i++;
    }
    if (i === maxIter) return [13, 27, 42];
    const s = i / maxIter;
    return [clamp(255 * Math.sqrt(s)), clamp(80 + 175 * s), clamp(160 + 95 * Math.sin(Math.PI * s))];
  });
}

/** Three interfering waves. */
export function plasma(width: number, height: number): Picture {
  return picture(width, height, (x, y) => {
    const v =
      Math.sin(x / 16) +
      Math.sin(y / 11) +
      Math.sin((x + y) / 23) +
      Math.sin(Math.hypot(x - 160, y - 160) / 9);
    return [
      clamp(128 + 127 * Math.sin(v)),
      clamp(128 + 127 * Math.sin(v + 2.1)),
      clamp(128 + 127 * Math.sin(v + 4.2)),
    ];
  });
}

/** A two-axis colour gradient. */
export function gradient(width: number, height: number): Picture {
  return picture(width, height, (x, y) => [
    clamp((x / (width - 1)) * 255),
    clamp((y / (height - 1)) * 255),
    clamp(255 - ((x + y) / (width + height - 2)) * 255),
  ]);
}

/** The demo site's PNGs: path under the root -> bytes. */
export function demoImages(): Map<string, Buffer> {
  return new Map([
    ["/img/mandelbrot.png", encodePng(mandelbrot(480, 320))],
    ["/img/plasma.png", encodePng(plasma(320, 320))],
    ["/img/gradient.png", encodePng(gradient(256, 256))],
  ]);
}
