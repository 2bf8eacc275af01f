// `site`: turns a trace into a document root plus a manifest of what a correct static
// server answers. One streaming pass over the trace collects the distinct URLs (small next
// to the trace); then the documents are written, then the manifest.
import {
  Classifier,
  type Classified,
  type QueryPolicy,
  type RequestKind,
  type SkipReason,
} from "./classify.js";
import { CONTENT_SCHEME } from "./content.js";
import {
  httpDate,
  ManifestWriter,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  SITE_MTIME,
  type ManifestEntry,
} from "./manifest.js";
import { SiteWriter } from "./site-writer.js";
import {
  nothingToReplay,
  NothingToReplayError,
  TraceReader,
  type FormatOption,
  type TraceStats,
} from "./trace/reader.js";
import { ancestorDirs, INDEX_FILE } from "./url.js";

/** Why `site` leaves out lines that `classify` accepts. */
export type SiteSkipReason =
  | SkipReason
  | "no_status" // the format logs no status (URL lists): nothing says what the server answered
  | "unknown_size" // only 304s or HEADs: no logged 200 GET gives the document's size
  | "file_dir_collision" // "/a" is a document but "/a/b" needs "/a" to be a directory
  | "ambiguous_404"; // a 404 whose path is (or lies under) a generated document or directory

export interface SiteOptions {
  trace: string;
  format?: FormatOption;
  /** Document root to create (must be new or empty). */
  out: string;
  manifest: string;
  query?: QueryPolicy;
  /** Document mtime (Unix seconds). */
  mtime?: number;
}

export interface SiteResult {
  trace: TraceStats;
  /** Trace lines (records) the manifest covers, i.e. lines a replay will send. */
  replayable: number;
  /** Records left out, by reason (counted in trace lines). */
  skipped: number;
  skippedByReason: Partial<Record<SiteSkipReason, number>>;
  urls: number;
  documentUrls: number;
  notFoundUrls: number;
  documents: number;
  bytes: number;
  root: string;
  manifest: string;
}

interface UrlInfo {
  docPath: string;
  isDirectory: boolean;
  lines: number;
  kinds: Set<RequestKind>;
  saw404: boolean;
  sawNoStatus: boolean;
}

/** What the trace says about its distinct URLs (small next to the trace), and the lines skipped. */
export class UrlCensus {
  readonly urls = new Map<string, UrlInfo>();
  /** Largest logged body of a 200 GET, per document: a transfer cut short logs fewer bytes. */
  readonly docSize = new Map<string, number>();
  readonly skippedByReason: Partial<Record<SiteSkipReason, number>> = {};

  skip(reason: SiteSkipReason, n = 1): void {
    this.skippedByReason[reason] = (this.skippedByReason[reason] ?? 0) + n;
  }

  /** Counts one classified trace line. */
  add(c: Classified): void {
    if (!c.ok) {
      this.skip(c.reason);
      return;
    }
    let info = this.urls.get(c.url);
    if (!info) {
      info = {
        docPath: c.docPath,
        isDirectory: c.isDirectory,
        lines: 0,
        kinds: new Set(),
        saw404: false,
        sawNoStatus: false,
      };
      this.urls.set(c.url, info);
    }
    info.lines++;
    info.kinds.add(c.kind);
    if (c.status === 404) info.saw404 = true;
    if (c.status === null) info.sawNoStatus = true;
    if (c.kind === "get" && c.status === 200) {
      this.docSize.set(c.docPath, Math.max(this.docSize.get(c.docPath) ?? 0, c.bytes ?? 0));
    }
  }

  /** Lines skipped, all reasons together. */
  get skipped(): number {
    return Object.values(this.skippedByReason).reduce((a, b) => a + b, 0);
  }
}

/** One streaming pass over the trace. */
async function takeCensus(reader: TraceReader, query: QueryPolicy): Promise<UrlCensus> {
  const census = new UrlCensus();
  const classifier = new Classifier({ query });
  for await (const batch of reader.batches()) for (const rec of batch) census.add(classifier.classify(rec));
  return census;
}

/** The documents to write (path -> size) and the directories they need. */
export interface SiteLayout {
  docs: Map<string, number>;
  dirs: Set<string>;
}

/**
 * "/a" and "/a/b" cannot both be documents: "/a" would have to be a file and a directory.
 * The more requested document wins (ties: the shorter path), so a stray "/ksc.html/" in a
 * log cannot evict the popular "/ksc.html".
 */
export function chooseDocuments(census: UrlCensus): SiteLayout {
  const { urls, docSize } = census;
  const docLines = new Map<string, number>();
  for (const info of urls.values()) {
    if (docSize.has(info.docPath)) docLines.set(info.docPath, (docLines.get(info.docPath) ?? 0) + info.lines);
  }
  const lines = (doc: string) => docLines.get(doc) ?? 0;
  const byPopularity = [...docSize.keys()].sort(
    (a, b) => lines(b) - lines(a) || a.length - b.length || (a < b ? -1 : a > b ? 1 : 0),
  );
  const docs = new Map<string, number>();
  const dirs = new Set<string>();
  for (const doc of byPopularity) {
    const ancestors = ancestorDirs(doc);
    if (dirs.has(doc) || ancestors.some((d) => docs.has(d))) continue;
    docs.set(doc, docSize.get(doc) ?? 0);
    for (const d of ancestors) dirs.add(d);
  }
  return { docs, dirs };
}

function isAmbiguous404(info: UrlInfo, { docs, dirs }: SiteLayout): boolean {
  if (dirs.has(info.docPath) || docs.has(info.docPath)) return true;
  if (ancestorDirs(info.docPath).some((d) => docs.has(d))) return true;
  // "/d/" with no /d/index.html: whether /d exists decides between 404, 403 and a listing.
  const dir = info.docPath.slice(0, -(INDEX_FILE.length + 1));
  return info.isDirectory && dir !== "" && dirs.has(dir);
}

/** A URL the manifest will list: a document, or a 404. */
export interface SiteUrl {
  url: string;
  info: UrlInfo;
  kind: "doc" | "404";
}

/**
 * What each URL becomes: a document, a 404, or skipped (counted in the census by reason).
 * Returns the URLs kept, sorted, and the trace lines they cover.
 */
export function judgeUrls(census: UrlCensus, layout: SiteLayout): { kept: SiteUrl[]; replayable: number } {
  const kept: SiteUrl[] = [];
  let replayable = 0;
  for (const [url, info] of census.urls) {
    let verdict: SiteUrl["kind"] | SiteSkipReason;
    if (info.sawNoStatus) verdict = "no_status";
    else if (layout.docs.has(info.docPath)) verdict = "doc";
    else if (census.docSize.has(info.docPath)) verdict = "file_dir_collision";
    else if (!info.saw404) verdict = "unknown_size";
    else if (isAmbiguous404(info, layout)) verdict = "ambiguous_404";
    else if (info.kinds.has("conditional") || info.kinds.has("head")) verdict = "unknown_size";
    else verdict = "404";
    if (verdict === "doc" || verdict === "404") {
      kept.push({ url, info, kind: verdict });
      replayable += info.lines;
    } else {
      census.skip(verdict, info.lines);
    }
  }
  kept.sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
  return { kept, replayable };
}

/** Writes the documents in path order; returns each one's SHA-256. */
function writeDocuments(writer: SiteWriter, docs: Map<string, number>): Map<string, string> {
  const shaByDoc = new Map<string, string>();
  for (const [doc, size] of [...docs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    shaByDoc.set(doc, writer.write(doc, size));
  return shaByDoc;
}

/** The manifest's entries, in URL order. */
export function manifestEntries(
  kept: SiteUrl[],
  docs: Map<string, number>,
  shaByDoc: Map<string, string>,
): ManifestEntry[] {
  return kept.map(({ url, info, kind }) => {
    const kinds = [...info.kinds].sort();
    const size = docs.get(info.docPath);
    const sha256 = shaByDoc.get(info.docPath);
    return kind === "doc" && size !== undefined && sha256 !== undefined
      ? { url, status: 200, doc: info.docPath, size, sha256, kinds }
      : { url, status: 404, kinds };
  });
}

function writeSiteManifest(
  options: SiteOptions,
  source: { reader: TraceReader; replayable: number; skipped: number },
  writer: SiteWriter,
  entries: ManifestEntry[],
  mtime: number,
): void {
  const manifest = new ManifestWriter(options.manifest, {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    content: CONTENT_SCHEME,
    mtime,
    last_modified: httpDate(mtime),
    entries: entries.length,
    documents: writer.documents,
    bytes: writer.bytes,
    source: {
      generator: "sc-cluster site",
      trace: options.trace,
      format: source.reader.format,
      records: source.reader.stats.records,
      replayable: source.replayable,
      skipped: source.skipped,
      query: options.query ?? "skip",
    },
  });
  for (const e of entries) manifest.add(e);
  manifest.close();
}

export async function buildSite(options: SiteOptions): Promise<SiteResult> {
  const reader = await TraceReader.open(options.trace, { format: options.format ?? "auto" });
  const mtime = options.mtime ?? SITE_MTIME;
  // Created first so a non-empty root is refused before the trace is read.
  const writer = new SiteWriter(options.out, mtime);
  const census = await takeCensus(reader, options.query ?? "skip");
  const layout = chooseDocuments(census);
  const { kept, replayable } = judgeUrls(census, layout);
  // A root and manifest that replay nothing are a failure to report, not a result.
  if (replayable === 0) {
    writer.discardEmpty(); // leave no empty root behind a failed build
    throw new NothingToReplayError(nothingToReplay(options.trace, reader.stats, census.skippedByReason));
  }
  const entries = manifestEntries(kept, layout.docs, writeDocuments(writer, layout.docs));
  const skipped = census.skipped;
  writeSiteManifest(options, { reader, replayable, skipped }, writer, entries, mtime);
  const notFoundUrls = entries.filter((e) => e.status === 404).length;
  return {
    trace: reader.stats,
    replayable,
    skipped,
    skippedByReason: census.skippedByReason,
    urls: census.urls.size,
    documentUrls: entries.length - notFoundUrls,
    notFoundUrls,
    documents: writer.documents,
    bytes: writer.bytes,
    root: writer.root,
    manifest: options.manifest,
  };
}
