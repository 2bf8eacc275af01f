// The pure parts of tun-bench.ts, apart from the script so they can be tested: its options, how
// many packets each phase moves, and the report.

export interface Options {
  /** Packets the reader gets in all (split between the two phases). */
  packets: number;
  seconds: number;
  size: number;
  gso: number;
  batch: number;
  json: boolean;
}

export const DEV_IN = "sctA"; // written by the writer
export const DEV_OUT = "sctB"; // read by the reader
export const MTU = 1500;
export const MSS = MTU - 40;
/** Bytes the reader's device may hold in its queue during a saturated round. */
export const QUEUE_BYTES = 64 * 1024 * 1024;

export function parseOptions(argv: string[]): Options {
  const opts: Options = { packets: 4_000_000, seconds: 10, size: 100, gso: 0, batch: 64, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v <= 0) throw new Error(`${a} needs a positive integer`);
      return v;
    };
    if (a === "--packets") opts.packets = Math.min(num(), 50_000_000);
    else if (a === "--seconds") opts.seconds = Math.min(num(), 60);
    else if (a === "--size") opts.size = num();
    else if (a === "--gso") opts.gso = num();
    else if (a === "--batch") opts.batch = Math.min(num(), 1024);
    else if (a === "--json") opts.json = true;
    else if (a === "--role") i++;
    else throw new Error(`unknown option ${a}`);
  }
  if (opts.size < 28 || opts.size > MTU) throw new Error(`--size must be 28..${MTU}`);
  if (opts.gso && (opts.gso <= MTU || opts.gso > 65535)) throw new Error(`--gso must be ${MTU + 1}..65535`);
  return opts;
}

/** Segments the reader sees per write. */
export function segmentsPerWrite(opts: Options): number {
  return opts.gso ? Math.ceil((opts.gso - 40) / MSS) : 1;
}

/** How many packets the phases move. */
export interface TunRounds {
  /** Segments the reader sees per write. */
  segs: number;
  /** Reader-side packets per saturated round: they all wait in sctB's queue until read. */
  round: number;
  writesPerRound: number;
  /** Writes in each phase: half the packets each. */
  writes: number;
}

export function tunRounds(opts: Options): TunRounds {
  const segs = segmentsPerWrite(opts);
  const readSize = opts.gso ? MTU : opts.size;
  const round = Math.min(100_000, Math.floor(QUEUE_BYTES / (readSize + 600)));
  return {
    segs,
    round,
    writesPerRound: Math.max(1, Math.floor(round / segs)),
    writes: Math.max(1, Math.floor(opts.packets / 2 / segs)),
  };
}

/** A role's reply: its counters and times. */
export type Reply = Record<string, number>;

/** What the phases measured: each side's totals and the kernel's drops on sctB. */
export interface TunFigures {
  idle: Reply;
  saturated: { write: Reply; read: Reply; kernelDrops: number };
  concurrent: { write: Reply; read: Reply; kernelDrops: number };
}

export function total(replies: Reply[]): Reply {
  const t: Reply = {};
  for (const r of replies) for (const [k, v] of Object.entries(r)) t[k] = (t[k] ?? 0) + v;
  return t;
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

function report(what: string, r: Reply, extra: string): string {
  const cpu = r.cpuSeconds!;
  const gbit = (r.bytes! * 8) / cpu / 1e9;
  return (
    `  ${what.padEnd(19)} ${fmt(r.packets! / cpu).padStart(9)} packets/s per core, ${gbit.toFixed(2)} Gbit/s per core  ` +
    `(${fmt(r.packets!)} in ${cpu.toFixed(2)} s CPU, ${Math.round((100 * r.sysSeconds!) / cpu)}% in the kernel, ` +
    `${fmt(r.packets! / r.wallSeconds!)}/s wall${extra})`
  );
}

/** Packets read with an unexpected size, in both phases. */
export function wrongSize(f: TunFigures): number {
  return f.saturated.read.wrongSize! + f.concurrent.read.wrongSize!;
}

/** The report's lines: what was written and read, each side per phase, the idle CPU, and an error if any. */
export function tunReport(opts: Options, segs: number, f: TunFigures): string[] {
  const batch = (r: Reply) => (r.packets! / Math.max(1, r.batches!)).toFixed(1);
  const lost = (w: Reply, r: Reply) => fmt(w.packets! * segs - r.packets!);
  const phase = (what: string, p: TunFigures["saturated"]) => [
    report(`write (${what})`, p.write, `, ${fmt(p.write.drops!)} write drops`),
    report(
      `read (${what})`,
      p.read,
      `, mean batch ${batch(p.read)}, ${lost(p.write, p.read)} lost, ${fmt(p.kernelDrops)} kernel drops`,
    ),
  ];
  const wrong = wrongSize(f);
  return [
    opts.gso
      ? `tun-bench: ${opts.gso}-byte IPv4/TCP GSO writes (vnetHdr, gsoSize ${MSS}) into ${DEV_IN} in batches of ` +
        `${opts.batch}; the kernel forwards them into ${DEV_OUT} as ${segs} segments each, read there with maxBatch 64`
      : `tun-bench: ${opts.size}-byte IPv4/UDP packets written into ${DEV_IN} in batches of ${opts.batch}, ` +
        `forwarded by the kernel into ${DEV_OUT}, read there with maxBatch 64`,
    ...phase("saturated", f.saturated),
    ...phase("concurrent", f.concurrent),
    `  idle: ${f.idle.idleCpuMs!.toFixed(1)} ms CPU used by a reading process in 1 s without traffic`,
    ...(wrong > 0 ? [`  ERROR: ${wrong} packets read with an unexpected size`] : []),
  ];
}
