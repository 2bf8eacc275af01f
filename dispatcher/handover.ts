// What a restarted dispatcher cannot rebuild from the consistent hash, handed over in a state
// file. Pure logic (the service reads and writes the file).
//
// With mh/sh a dispatcher with an empty table sends a connection's packets where the hash
// over the configured nodes (the "home" placement, health ignored) puts them. That is where
// the connection lives unless it was opened while some node was out of scheduling (killed,
// failing checks): then it was placed by the smaller table, and about 1/N of those live on
// another node than the home placement names. Only those "displaced" connections need to
// outlive the process, so only they are recorded, like the kernel tables Katran (pinned BPF
// maps) and IPVS keep across a restart of their control process, but a few entries instead of
// the whole table.
import { ipv4FromString, ipv4ToString, isWireError } from "../sc/wire/index.js";
import { checkNodeId } from "./nodes.js";

/** A connection (client address and port at the VIP) and the node that holds it. */
export interface DisplacedConnection {
  /** uint32 client address. */
  src: number;
  srcPort: number;
  node: string;
}

/** Default bound: beyond it new displaced connections are not recorded (counted). */
export const DEFAULT_MAX_DISPLACED = 65536;

const HEADER = "sc-dispatcher-handover 1";

/**
 * The displaced connections of this dispatcher, bounded. `version` changes whenever the set
 * does, so the writer knows when to write.
 */
export class DisplacedSet {
  private readonly entries = new Map<number, DisplacedConnection>();
  version = 0;
  /** Displaced connections not recorded because the set was full. */
  overflow = 0;

  constructor(readonly max = DEFAULT_MAX_DISPLACED) {}

  get size(): number {
    return this.entries.size;
  }

  record(src: number, srcPort: number, node: string): void {
    const k = key(src, srcPort);
    const old = this.entries.get(k);
    if (old?.node === node) return;
    if (old === undefined && this.entries.size >= this.max) {
      this.overflow++;
      return;
    }
    this.entries.set(k, { src: src >>> 0, srcPort, node });
    this.version++;
  }

  /** Forgets the connections `live` says are over (their table entry ended or moved). */
  prune(live: (c: DisplacedConnection) => boolean): void {
    for (const [k, c] of this.entries) {
      if (!live(c)) {
        this.entries.delete(k);
        this.version++;
      }
    }
  }

  list(): DisplacedConnection[] {
    return [...this.entries.values()];
  }
}

function key(src: number, srcPort: number): number {
  // 48 bits: exact in a double.
  return (src >>> 0) * 65536 + srcPort;
}

/** The state file: a header line, then `ADDR PORT NODE` per connection. */
export function encodeHandover(list: readonly DisplacedConnection[]): string {
  return [HEADER, ...list.map((c) => `${ipv4ToString(c.src)} ${c.srcPort} ${c.node}`)].join("\n") + "\n";
}

/**
 * Parses a state file; lines that do not parse are skipped and counted (a torn or foreign
 * file must not stop a start). At most `max` connections are taken.
 */
export function decodeHandover(
  text: string,
  max = DEFAULT_MAX_DISPLACED,
): { connections: DisplacedConnection[]; skipped: number } {
  const lines = text.split("\n");
  if (lines[0] !== HEADER) return { connections: [], skipped: text.length > 0 ? 1 : 0 };
  const connections: DisplacedConnection[] = [];
  let skipped = 0;
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    const c = parseLine(line);
    if (c === undefined || connections.length >= max) skipped++;
    else connections.push(c);
  }
  return { connections, skipped };
}

function parseLine(line: string): DisplacedConnection | undefined {
  const parts = line.split(" ");
  if (parts.length !== 3) return undefined;
  const [addr, port, node] = parts as [string, string, string];
  const src = ipv4FromString(addr);
  if (isWireError(src) || !/^\d{1,5}$/.test(port) || Number(port) > 65535) return undefined;
  try {
    checkNodeId(node);
  } catch {
    return undefined;
  }
  return { src, srcPort: Number(port), node };
}
