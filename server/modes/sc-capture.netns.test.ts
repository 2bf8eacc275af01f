// FIN delegation seen from the client (issue 15): a cloned HTTP/1.0 response must reach the
// client as the same segments a plain node sends: data with FIN on the last segment, no extra
// FIN/ACK round. A 2-node SC cluster, every request cloned (--clone-local-max-bytes 0); the
// client's kernel TCP (curl, ab) fetches one document homed at each node, so of each pair one
// connection is served where it arrived and one is cloned; tcpdump in the client's namespace
// records what the server side sent on each, and the two sequences are compared.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withCluster, type Cluster } from "../../cluster/index.js";
import { buildSite } from "../../loadgen/index.js";
import { testPrefix } from "../../testbed/index.js";
import { UrlMapper } from "../membership/mapper.js";

const mapper = new UrlMapper([{ id: "node1" }, { id: "node2" }]);
const SIZES = [1000, 5000, 40_000];

/** A document of `size` bytes homed at `home`. */
function pathFor(size: number, home: string): string {
  for (let i = 0; ; i++) {
    const p = `/c${size}/${i}.bin`;
    if (mapper.lookup(p) === home) return p;
  }
}

interface Segment {
  /** Source port of the segment (80: sent by the server side). */
  from: number;
  /** The client's port: one connection per port. */
  client: number;
  flags: string;
  length: number;
  /** End of the sequence range the segment carries (relative, as tcpdump prints it), if any. */
  seqEnd: number | null;
}

/** Parses `tcpdump -n -l` lines (test data, not network input). */
function parseTcpdump(out: string, serverPort: number): Segment[] {
  const segs: Segment[] = [];
  const lines = out.split("\n");
  lines.pop(); // not yet ended by a newline (or empty)
  for (const line of lines) {
    const m = /IP (\S+)\.(\d+) > (\S+)\.(\d+): Flags \[([^\]]*)\].*length (\d+)/.exec(line);
    if (m === null) continue;
    const sport = Number(m[2]);
    const dport = Number(m[4]);
    const seq = /seq (\d+):(\d+)/.exec(line);
    segs.push({
      from: sport,
      client: sport === serverPort ? dport : sport,
      flags: m[5]!,
      length: Number(m[6]),
      seqEnd: seq === null ? null : Number(seq[2]),
    });
  }
  return segs;
}

/** What the server side sent on each connection, in the order the connections opened (a
 *  SYN-ACK starts a connection, so a client port used twice is two connections). A segment
 *  that carries nothing beyond what the connection already sent is a retransmission (a timer
 *  that fired on a busy machine, local or cloned alike) and is left out of the comparison. */
function serverSequences(segs: Segment[], serverPort: number): string[][] {
  const all: string[][] = [];
  const current = new Map<number, { list: string[]; sentTo: number }>();
  for (const s of segs) {
    if (s.from !== serverPort) continue;
    let conn = current.get(s.client);
    if (conn === undefined || s.flags.includes("S")) {
      conn = { list: [], sentTo: 0 };
      all.push(conn.list);
      current.set(s.client, conn);
    }
    if (s.seqEnd !== null) {
      if (s.seqEnd <= conn.sentTo) continue;
      conn.sentTo = s.seqEnd;
    }
    conn.list.push(`${s.flags}/${s.length}`);
  }
  return all;
}

/** Starts tcpdump in the client's namespace; resolves once it listens. */
async function startCapture(
  c: Cluster,
): Promise<{ stop: (until: (out: string) => boolean) => Promise<string> }> {
  const child = c.testbed.spawn(
    "client",
    "tcpdump",
    ["-n", "-l", "--immediate-mode", "-i", "any", "-s", "128", "tcp port 80"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  let waiting: { until: (out: string) => boolean; resolve: () => void } | undefined;
  child.stdout!.on("data", (b: Buffer) => {
    out += b.toString();
    if (waiting !== undefined && waiting.until(out)) waiting.resolve();
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  await new Promise<void>((resolve, reject) => {
    let err = "";
    child.stderr!.on("data", (b: Buffer) => {
      err += b.toString();
      if (err.includes("listening on")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`tcpdump exited ${code}: ${err}`)));
  });
  return {
    /** Stops once `until` holds for what was printed (every packet expected), or after 10 s. */
    stop: async (until: (out: string) => boolean) => {
      if (!until(out)) {
        await new Promise<void>((resolve) => {
          waiting = { until, resolve };
          setTimeout(resolve, 10_000).unref();
        });
      }
      child.kill("SIGINT");
      await exited;
      return out;
    },
  };
}

async function run(c: Cluster, cmd: string, args: string[]): Promise<string> {
  const r = await c.testbed.exec("client", cmd, args, { timeoutMs: 60_000 });
  return r.stdout;
}

async function clonesSent(c: Cluster): Promise<number> {
  let n = 0;
  for (const node of c.nodes) {
    for (const line of (await c.metrics(node)).split("\n")) {
      if (line.startsWith("sc_clones_sent_total")) n += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return n;
}

test("sc: FIN delegation: a cloned HTTP/1.0 response reaches curl and ab as the same segments as a local one", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sc-capture-"));
  try {
    const docs = SIZES.map((size) => ({ size, a: pathFor(size, "node1"), b: pathFor(size, "node2") }));
    const lines = docs.flatMap((d) =>
      [d.a, d.b].map((p) => `c - - [01/Jan/2001:00:00:00 +0000] "GET ${p} HTTP/1.0" 200 ${d.size}`),
    );
    await writeFile(join(dir, "trace.log"), lines.join("\n") + "\n");
    await buildSite({
      trace: join(dir, "trace.log"),
      out: join(dir, "root"),
      manifest: join(dir, "m.jsonl"),
    });
    await withCluster(
      {
        prefix: testPrefix("scp"),
        nodes: 2,
        mode: "sc",
        site: join(dir, "root"),
        scheduler: "sh",
        extraArgs: { node: ["--clone-local-max-bytes", "0"] },
      },
      async (c) => {
        // Warm both caches (the clone's node answers from its cache like the plain node).
        for (const d of docs)
          for (const p of [d.a, d.b])
            await run(c, "curl", ["-s", "-o", "/dev/null", `${c.vipUrl}${p.slice(1)}`]);
        const before = await clonesSent(c);
        const cap = await startCapture(c);
        for (const d of docs) {
          for (const p of [d.a, d.b]) {
            const url = `${c.vipUrl}${p.slice(1)}`;
            await run(c, "curl", ["-s", "--http1.0", "-o", "/dev/null", url]);
            await run(c, "ab", ["-q", "-n", "3", "-c", "1", url]);
          }
        }
        // Every connection ends with the server's ACK of the client's FIN.
        const out = await cap.stop((text) => {
          const q = serverSequences(parseTcpdump(text, 80), 80);
          return (
            q.length === SIZES.length * 8 &&
            q.every((x) => x.some((y) => y.includes("F")) && x.at(-1) === "./0")
          );
        });
        const cloned = (await clonesSent(c)) - before;
        // Per size: 4 connections to the document homed where the client lands, 4 cloned.
        assert.equal(cloned, SIZES.length * 4, "half of the connections were cloned");
        const seqs = serverSequences(parseTcpdump(out, 80), 80);
        assert.equal(
          seqs.length,
          SIZES.length * 8,
          `one sequence per connection:\n${seqs.map((q) => q.join(" ")).join("\n")}\n${out.slice(-3000)}`,
        );
        // Connections in order: per size, per document, curl then 3 ab; the documents differ
        // only in their home, so segment for segment the two halves must agree.
        for (let i = 0; i < SIZES.length; i++) {
          const group = seqs.slice(i * 8, i * 8 + 8);
          const [a, b] = [group.slice(0, 4), group.slice(4, 8)];
          for (let k = 0; k < 4; k++) {
            assert.deepEqual(
              strip(b[k]!),
              strip(a[k]!),
              `size ${SIZES[i]}, connection ${k}: what the server side sent differs between local and cloned`,
            );
          }
          const last = a[0]!.find((s) => s.includes("F"));
          assert.ok(
            last !== undefined && !last.endsWith("/0"),
            `FIN rides on the last data segment: ${a[0]}`,
          );
        }
      },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/**
 * The server side's segments with what timing may change merged away: consecutive pure ACKs
 * (the client's delayed ACKs decide how many a server sends) count once.
 */
function strip(seq: string[]): string[] {
  const out: string[] = [];
  for (const s of seq) if (!(s === "./0" && out.at(-1) === "./0")) out.push(s);
  return out;
}
