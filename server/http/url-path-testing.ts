// Test support for the path mapping (url-path.ts): file names with every printable ASCII
// character but "/" and a few UTF-8 names, the request paths that must name each of them, and
// spellings that must never be served. Shared by the in-process tests and the testbed test.
import net from "node:net";
import { encodeSegment } from "./url-path.js";

/** RFC 3986 pchar minus pct-encoded: what a path segment may carry literally. */
const PCHAR_LITERAL = new Set(
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@",
);

export interface NameCase {
  /** The file's name in the root (one segment). */
  file: string;
  /** Request paths that must serve it: raw (when RFC 3986 allows), canonical, fully encoded. */
  spellings: string[];
}

/** Every byte of `s` as %XX (UTF-8), upper- or lower-case hex. */
export function percentAll(s: string, lower = false): string {
  let out = "";
  for (const b of Buffer.from(s, "utf8")) {
    const h = b.toString(16).padStart(2, "0");
    out += "%" + (lower ? h : h.toUpperCase());
  }
  return out;
}

function spellingsOf(file: string, special: string): string[] {
  const out = new Set<string>();
  if ([...file].every((ch) => PCHAR_LITERAL.has(ch))) out.add("/" + file);
  out.add("/" + encodeSegment(file));
  // Only the special character escaped, in both cases of hex.
  const i = file.indexOf(special);
  const head = encodeSegment(file.slice(0, i));
  const tail = encodeSegment(file.slice(i + special.length));
  out.add("/" + head + percentAll(special) + tail);
  out.add("/" + head + percentAll(special, true) + tail);
  return [...out];
}

/** The printable ASCII characters except "/": 0x20..0x7e. */
export function printableAscii(): string[] {
  const out: string[] = [];
  for (let c = 0x20; c <= 0x7e; c++) if (c !== 0x2f) out.push(String.fromCharCode(c));
  return out;
}

const UTF8_NAMES = ["café.html", "naïve ü.txt", "日本語.txt", "emoji-😀.txt", "Ωmega+π=3,14.css"];

/**
 * One file per character, "a<c>b" (and "<c>a" for characters a name may start with: not "."),
 * plus the UTF-8 names; each with the request paths that must serve it.
 */
export function nameCases(): NameCase[] {
  const out: NameCase[] = [];
  for (const c of printableAscii()) {
    out.push({ file: `a${c}b`, spellings: spellingsOf(`a${c}b`, c) });
    if (c !== ".") out.push({ file: `${c}a`, spellings: spellingsOf(`${c}a`, c) });
  }
  for (const name of UTF8_NAMES) {
    const special = [...name].find((ch) => ch.charCodeAt(0) > 127)!;
    out.push({ file: name, spellings: spellingsOf(name, special) });
  }
  return out;
}

/**
 * Spellings of traversal, encoded "/", NUL and friends: none may be answered 200. `secret` names
 * a file in the root's parent directory that a climb would reach.
 */
export function refusedSpellings(secret: string): string[] {
  const s = encodeSegment(secret);
  return [
    `/../${s}`,
    `/%2e%2e/${s}`,
    `/%2E%2E/${s}`,
    `/a/%2e%2e/%2e%2e/${s}`,
    `/.%2e/${s}`,
    `/%2e./${s}`,
    `/..%2f${s}`,
    `/..%2F${s}`,
    `/%2e%2e%2f${s}`,
    `/..%5c${s}`,
    `/..%5C${s}`,
    `/a%5c..%5c..%5c${s}`,
    `/a%5c..`,
    `/..\\${s}`,
    `/a%00b`,
    `/a%00`,
    `/a%2fb`,
    `/a%2Fb`,
    `/%c0%ae%c0%ae/${s}`,
    `/%252e%252e/${s}`,
  ];
}

export interface RawAnswer {
  target: string;
  /** HTTP status, 0 when no complete response head arrived. */
  status: number;
  etag: string | undefined;
  body: Buffer;
  error?: string;
}

/**
 * GET `target` exactly as given (no URL parser in between: it would re-encode or resolve it) on
 * a fresh connection, and read until the server closes.
 */
export function rawGet(host: string, port: number, target: string, timeoutMs = 5000): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    const parts: Buffer[] = [];
    const done = (error?: string) => {
      clearTimeout(timer);
      s.destroy();
      resolve(parseAnswer(target, Buffer.concat(parts), error));
    };
    const timer = setTimeout(() => done(`no close within ${timeoutMs} ms`), timeoutMs);
    s.on("connect", () =>
      s.write(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, "latin1"),
    );
    s.on("data", (c: Buffer) => parts.push(c));
    s.on("error", (e) => done(e.message));
    s.on("close", () => done());
  });
}

function parseAnswer(target: string, buf: Buffer, error: string | undefined): RawAnswer {
  const end = buf.indexOf("\r\n\r\n");
  if (end === -1)
    return { target, status: 0, etag: undefined, body: Buffer.alloc(0), error: error ?? "no head" };
  const lines = buf.toString("latin1", 0, end).split("\r\n");
  let etag: string | undefined;
  let length = buf.length - end - 4;
  for (const l of lines.slice(1)) {
    const c = l.indexOf(":");
    const name = l.slice(0, c).toLowerCase();
    if (name === "etag") etag = l.slice(c + 1).trim();
    if (name === "content-length") length = Number(l.slice(c + 1).trim());
  }
  const status = Number(lines[0]!.split(" ")[1]);
  return { target, status, etag, body: buf.subarray(end + 4, end + 4 + length) };
}

/** rawGet for every target, `concurrency` at a time, answers in the targets' order. */
export async function rawGetAll(
  host: string,
  port: number,
  targets: readonly string[],
  concurrency = 16,
): Promise<RawAnswer[]> {
  const out: RawAnswer[] = new Array<RawAnswer>(targets.length);
  let next = 0;
  const worker = async () => {
    while (next < targets.length) {
      const i = next++;
      out[i] = await rawGet(host, port, targets[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, targets.length) }, worker));
  return out;
}
