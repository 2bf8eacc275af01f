// Kernel-side client for the interop tests (node:net, i.e. the Linux TCP stack), run in a
// testbed client namespace against interop-service.ts. Prints one JSON result line.
//   node interop-client.js echo   <addr> <conns> <bytes>   send, read the echo, both sha256-checked
//   node interop-client.js fixed  <addr> <conns> <bytes>   ask port 19 for <bytes>; server closes first
//   node interop-client.js upload <addr> <conns> <bytes>   port 10 answers "<bytes> <sha256>"
//   node interop-client.js abort  <addr> <bytes> <after>   read <after> bytes of a download, then RST
//   node interop-client.js stall  <addr> <conns> <bytes> <holdMs>   ask port 19 for <bytes> and
//        do not read for <holdMs> (the window closes), then read what is left: reports per
//        connection the bytes received and how it ended (ECONNRESET when our stack gave up)
// Every connection must finish within the timeout (default 120 s, --timeout-ms).

import { createHash, randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { parseArgs } from "node:util";
import { patternSha256 } from "./interop-pattern.js";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { "timeout-ms": { type: "string", default: "120000" } },
});
const [mode, addr, a, b] = positionals;
const timeoutMs = Number(values["timeout-ms"]);

interface Result {
  ok: boolean;
  error?: string;
}

function sha(parts: Buffer[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("hex");
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: addr!, port, noDelay: true });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

/** Collects everything until 'end'; rejects on error. */
function readAll(s: Socket): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on("data", (d: Buffer) => parts.push(d));
    s.once("end", () => resolve(parts));
    s.once("error", reject);
  });
}

function writeAll(s: Socket, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let off = 0;
    const pump = (): void => {
      while (off < data.length) {
        const n = Math.min(256 * 1024, data.length - off);
        const ok = s.write(data.subarray(off, off + n));
        off += n;
        if (!ok) return void s.once("drain", pump);
      }
      s.end();
      resolve();
    };
    s.once("error", reject);
    pump();
  });
}

async function echoOne(bytes: number): Promise<Result> {
  const data = randomBytes(bytes);
  const s = await open(7);
  const [parts] = await Promise.all([readAll(s), writeAll(s, data)]);
  const ok = sha(parts) === sha([data]);
  return ok
    ? { ok }
    : { ok, error: `echo mismatch (${parts.reduce((n, p) => n + p.length, 0)} of ${bytes})` };
}

async function fixedOne(bytes: number): Promise<Result> {
  const s = await open(19);
  s.write(`${bytes}\n`);
  const parts = await readAll(s);
  s.end();
  const got = parts.reduce((n, p) => n + p.length, 0);
  const ok = got === bytes && sha(parts) === patternSha256(bytes);
  return ok ? { ok } : { ok, error: `fixed mismatch (${got} of ${bytes})` };
}

async function uploadOne(bytes: number): Promise<Result> {
  const data = randomBytes(bytes);
  const s = await open(10);
  const [parts] = await Promise.all([readAll(s), writeAll(s, data)]);
  const answer = Buffer.concat(parts).toString().trim();
  const want = `${bytes} ${sha([data])}`;
  return answer === want ? { ok: true } : { ok: false, error: `upload: got "${answer}", want "${want}"` };
}

async function many(conns: number, one: () => Promise<Result>): Promise<void> {
  const start = Date.now();
  const results = await Promise.all(
    Array.from({ length: conns }, () =>
      one().catch((e: Error) => ({ ok: false, error: e.message }) as Result),
    ),
  );
  const failed = results.filter((r) => !r.ok);
  print({
    ok: results.length - failed.length,
    failed: failed.length,
    errors: failed.slice(0, 5),
    ms: Date.now() - start,
  });
}

async function abort(bytes: number, after: number): Promise<void> {
  const s = await open(19);
  s.write(`${bytes}\n`);
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    s.on("data", (d: Buffer) => {
      got += d.length;
      if (got >= after) {
        s.resetAndDestroy();
        resolve();
      }
    });
    s.once("end", () => reject(new Error("the download ended before the abort")));
    s.once("error", reject);
  });
  print({ ok: true, received: got });
}

async function stall(conns: number, bytes: number, holdMs: number): Promise<void> {
  const sockets = await Promise.all(Array.from({ length: conns }, () => open(19)));
  for (const s of sockets) {
    s.pause(); // reading stops once node's buffer is full: the kernel's window closes
    s.write(`${bytes}\n`);
  }
  await new Promise((resolve) => setTimeout(resolve, holdMs));
  const results = await Promise.all(
    sockets.map(
      (s) =>
        new Promise<{ received: number; end: string }>((resolve) => {
          let received = 0;
          s.on("data", (d: Buffer) => (received += d.length));
          s.once("end", () => resolve({ received, end: "end" }));
          s.once("error", (e: NodeJS.ErrnoException) => resolve({ received, end: e.code ?? e.message }));
          s.resume();
        }),
    ),
  );
  print({ results });
}

function print(o: unknown): void {
  process.stdout.write(JSON.stringify(o) + "\n", () => process.exit(0));
}

const timer = setTimeout(() => {
  console.error(`interop-client: timeout after ${timeoutMs} ms`);
  process.exit(3);
}, timeoutMs);
timer.unref();

const n = Number(a);
const m = Number(b);
const third = Number(positionals[4]);
switch (mode) {
  case "echo":
    await many(n, () => echoOne(m));
    break;
  case "fixed":
    await many(n, () => fixedOne(m));
    break;
  case "upload":
    await many(n, () => uploadOne(m));
    break;
  case "abort":
    await abort(n, m);
    break;
  case "stall":
    await stall(n, m, third);
    break;
  default:
    console.error(
      "usage: interop-client.js echo|fixed|upload <addr> <conns> <bytes> | abort <addr> <bytes> <after> | stall <addr> <conns> <bytes> <holdMs>",
    );
    process.exit(2);
}
