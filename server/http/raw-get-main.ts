// Test support, run inside a testbed host: `node raw-get-main.js HOST PORT` reads a JSON array of
// request-targets on stdin, GETs each exactly as given (rawGet: no URL parser re-encodes it), and
// prints a JSON array of answers: status, ETag, body length and SHA-256.
import { createHash } from "node:crypto";
import { rawGetAll } from "./url-path-testing.js";

export interface ProbeAnswer {
  target: string;
  status: number;
  etag: string | null;
  bytes: number;
  sha256: string;
  error: string | null;
}

async function main(): Promise<void> {
  const [host, port] = process.argv.slice(2);
  let input = "";
  for await (const chunk of process.stdin) input += String(chunk);
  const targets = JSON.parse(input) as string[];
  const answers = await rawGetAll(host!, Number(port), targets);
  const out: ProbeAnswer[] = answers.map((a) => ({
    target: a.target,
    status: a.status,
    etag: a.etag ?? null,
    bytes: a.body.length,
    sha256: createHash("sha256").update(a.body).digest("hex"),
    error: a.error ?? null,
  }));
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
