// The manifest: what a correct static server answers for each replayable URL of a trace.
// JSON Lines: a header object, then one entry per URL. Written by `site` and `trace synth`,
// read by `loadgen --verify`. Format (version 1) in docs/loadgen.md.
import { createReadStream, openSync, writeSync, closeSync } from "node:fs";
import { createInterface } from "node:readline";
import type { RequestKind } from "./classify.js";
import { canonicalizeTarget } from "./url.js";
import { UserError } from "../common/errors.js";

export const MANIFEST_FORMAT = "sc-cluster-manifest";
export const MANIFEST_VERSION = 1;

export interface ManifestHeader {
  format: typeof MANIFEST_FORMAT;
  version: number;
  /** How document bytes derive from the document path (content.ts). */
  content: string;
  /** Modification time of every document (Unix seconds) and as an HTTP date. */
  mtime: number;
  last_modified: string;
  /** Number of entries that follow, documents and bytes in the root. */
  entries: number;
  documents: number;
  bytes: number;
  /** Where it came from: free-form (trace path and format, or synth parameters). */
  source: Record<string, unknown>;
}

export interface DocumentEntry {
  /** Canonical request path. */
  url: string;
  status: 200;
  /** Document path from the root (several URLs may name one document: "/d/" and "/d/index.html"). */
  doc: string;
  size: number;
  sha256: string;
  /** Request kinds the trace used for this URL (informational). */
  kinds: RequestKind[];
}

export interface MissingEntry {
  url: string;
  status: 404;
  kinds: RequestKind[];
}

export type ManifestEntry = DocumentEntry | MissingEntry;

export interface Manifest {
  header: ManifestHeader;
  entries: Map<string, ManifestEntry>;
}

export class ManifestError extends UserError {
  constructor(message: string) {
    super(message, "ERR_MANIFEST");
  }
}

/** Streams a manifest to disk: header first, then entries as they are produced. */
export class ManifestWriter {
  private fd: number;
  private buf: string[] = [];
  private bufLen = 0;

  constructor(path: string, header: ManifestHeader) {
    this.fd = openSync(path, "w");
    this.push(JSON.stringify(header));
  }

  add(entry: ManifestEntry): void {
    this.push(JSON.stringify(entry));
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }

  private push(line: string): void {
    this.buf.push(line, "\n");
    this.bufLen += line.length + 1;
    if (this.bufLen >= 1 << 20) this.flush();
  }

  private flush(): void {
    if (this.buf.length > 0) writeSync(this.fd, this.buf.join(""));
    this.buf = [];
    this.bufLen = 0;
  }
}

function checkEntry(e: unknown, line: number): ManifestEntry {
  const o = e as Partial<Omit<DocumentEntry, "status">> & { status?: number };
  const ok =
    typeof o === "object" &&
    o !== null &&
    typeof o.url === "string" &&
    o.url.startsWith("/") &&
    Array.isArray(o.kinds) &&
    (o.status === 404 ||
      (o.status === 200 &&
        typeof o.doc === "string" &&
        Number.isSafeInteger(o.size) &&
        (o.size as number) >= 0 &&
        typeof o.sha256 === "string" &&
        /^[0-9a-f]{64}$/.test(o.sha256)));
  if (!ok) throw new ManifestError(`manifest line ${line}: not a valid entry`);
  // The URL is recorded in the servers' canonical spelling and names its document by their
  // mapping (url.ts), so a replay's lookup by canonical URL and a server's file agree.
  const c = canonicalizeTarget(o.url!);
  if (!c.ok || c.url !== o.url || (o.status === 200 && c.docPath !== o.doc))
    throw new ManifestError(
      `manifest line ${line}: '${o.url}' is not a canonical URL${o.status === 200 ? ` naming '${o.doc}'` : ""}`,
    );
  return o as ManifestEntry;
}

/** Reads a whole manifest (one entry per URL; small next to the trace it describes). */
export async function readManifest(path: string): Promise<Manifest> {
  const input = createReadStream(path);
  const rl = createInterface({ input, crlfDelay: Infinity });
  let header: ManifestHeader | null = null;
  const entries = new Map<string, ManifestEntry>();
  let n = 0;
  try {
    for await (const line of rl) {
      n++;
      if (line.trim() === "") continue;
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch {
        throw new ManifestError(`manifest '${path}' line ${n}: not JSON`);
      }
      if (header === null) {
        const h = obj as Partial<ManifestHeader>;
        if (h.format !== MANIFEST_FORMAT || h.version !== MANIFEST_VERSION) {
          throw new ManifestError(
            `'${path}' is not a version ${MANIFEST_VERSION} ${MANIFEST_FORMAT} (first line must be its header)`,
          );
        }
        header = h as ManifestHeader;
        continue;
      }
      const e = checkEntry(obj, n);
      entries.set(e.url, e);
    }
  } catch (err) {
    if (err instanceof ManifestError) throw err;
    throw new ManifestError(`cannot read manifest '${path}': ${(err as Error).message}`);
  } finally {
    rl.close();
    input.destroy();
  }
  if (header === null) throw new ManifestError(`manifest '${path}' is empty`);
  return { header, entries };
}

/** RFC 9110 IMF-fixdate for Unix seconds. */
export function httpDate(seconds: number): string {
  return new Date(seconds * 1000).toUTCString();
}

/**
 * Every generated document's mtime: 2001-01-01T00:00:00Z (the paper's trace month). Fixed,
 * so Last-Modified and ETags are reproducible and a conditional request with this date as
 * If-Modified-Since is answered 304 by a server that supports it.
 */
export const SITE_MTIME = 978307200;
