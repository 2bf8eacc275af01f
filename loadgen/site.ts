// `site`: turns a trace into a document root plus a manifest of what a correct static
// server answers. One streaming pass over the trace collects the distinct URLs (small next
// to the trace); then the documents are written, then the manifest.
import { Classifier, type QueryPolicy, type RequestKind, type SkipReason } from "./classify.js";
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

export async function buildSite(options: SiteOptions): Promise<SiteResult> {
  const reader = await TraceReader.open(options.trace, { format: options.format ?? "auto" });
  const mtime = options.mtime ?? SITE_MTIME;
  // Created first so a non-empty root is refused before the trace is read.
  const writer = new SiteWriter(options.out, mtime);
  const skippedByReason: Partial<Record<SiteSkipReason, number>> = {};
  const skip = (reason: SiteSkipReason, n = 1) => {
    skippedByReason[reason] = (skippedByReason[reason] ?? 0) + n;
  };
  const urls = new Map<string, UrlInfo>();
  // Largest logged body of a 200 GET, per document: a transfer cut short logs fewer bytes.
  const docSize = new Map<string, number>();
  const classifier = new Classifier({ query: options.query ?? "skip" });

  for await (const batch of reader.batches())
    for (const rec of batch) {
      const c = classifier.classify(rec);
      if (!c.ok) {
        skip(c.reason);
        continue;
      }
      let info = urls.get(c.url);
      if (!info) {
        info = {
          docPath: c.docPath,
          isDirectory: c.isDirectory,
          lines: 0,
          kinds: new Set(),
          saw404: false,
          sawNoStatus: false,
        };
        urls.set(c.url, info);
      }
      info.lines++;
      info.kinds.add(c.kind);
      if (c.status === 404) info.saw404 = true;
      if (c.status === null) info.sawNoStatus = true;
      if (c.kind === "get" && c.status === 200) {
        docSize.set(c.docPath, Math.max(docSize.get(c.docPath) ?? 0, c.bytes ?? 0));
      }
    }

  // "/a" and "/a/b" cannot both be documents: "/a" would have to be a file and a directory.
  // The more requested document wins (ties: the shorter path), so a stray "/ksc.html/" in a
  // log cannot evict the popular "/ksc.html".
  const docLines = new Map<string, number>();
  for (const info of urls.values()) {
    if (docSize.has(info.docPath)) docLines.set(info.docPath, (docLines.get(info.docPath) ?? 0) + info.lines);
  }
  const byPopularity = [...docSize.keys()].sort(
    (a, b) => docLines.get(b)! - docLines.get(a)! || a.length - b.length || (a < b ? -1 : a > b ? 1 : 0),
  );
  const docs = new Map<string, number>();
  const dirs = new Set<string>();
  for (const doc of byPopularity) {
    const ancestors = ancestorDirs(doc);
    if (dirs.has(doc) || ancestors.some((d) => docs.has(d))) continue;
    docs.set(doc, docSize.get(doc)!);
    for (const d of ancestors) dirs.add(d);
  }

  const isAmbiguous404 = (info: UrlInfo): boolean => {
    if (dirs.has(info.docPath) || docs.has(info.docPath)) return true;
    if (ancestorDirs(info.docPath).some((d) => docs.has(d))) return true;
    // "/d/" with no /d/index.html: whether /d exists decides between 404, 403 and a listing.
    const dir = info.docPath.slice(0, -(INDEX_FILE.length + 1));
    return info.isDirectory && dir !== "" && dirs.has(dir);
  };

  type Pending = { url: string; info: UrlInfo; kind: "doc" | "404" };
  const pending: Pending[] = [];
  let replayable = 0;
  for (const [url, info] of urls) {
    let verdict: Pending["kind"] | SiteSkipReason;
    if (info.sawNoStatus) verdict = "no_status";
    else if (docs.has(info.docPath)) verdict = "doc";
    else if (docSize.has(info.docPath)) verdict = "file_dir_collision";
    else if (!info.saw404) verdict = "unknown_size";
    else if (isAmbiguous404(info)) verdict = "ambiguous_404";
    else if (info.kinds.has("conditional") || info.kinds.has("head")) verdict = "unknown_size";
    else verdict = "404";
    if (verdict === "doc" || verdict === "404") {
      pending.push({ url, info, kind: verdict });
      replayable += info.lines;
    } else {
      skip(verdict, info.lines);
    }
  }
  // A root and manifest that replay nothing are a failure to report, not a result.
  if (replayable === 0) {
    writer.discardEmpty(); // leave no empty root behind a failed build
    throw new NothingToReplayError(nothingToReplay(options.trace, reader.stats, skippedByReason));
  }
  pending.sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));

  const shaByDoc = new Map<string, string>();
  for (const doc of [...docs.keys()].sort()) shaByDoc.set(doc, writer.write(doc, docs.get(doc)!));

  const entries: ManifestEntry[] = pending.map(({ url, info, kind }) => {
    const kinds = [...info.kinds].sort();
    return kind === "doc"
      ? {
          url,
          status: 200,
          doc: info.docPath,
          size: docs.get(info.docPath)!,
          sha256: shaByDoc.get(info.docPath)!,
          kinds,
        }
      : { url, status: 404, kinds };
  });
  const notFoundUrls = entries.filter((e) => e.status === 404).length;
  const skipped = Object.values(skippedByReason).reduce((a, b) => a + b, 0);
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
      format: reader.format,
      records: reader.stats.records,
      replayable,
      skipped,
      query: options.query ?? "skip",
    },
  });
  for (const e of entries) manifest.add(e);
  manifest.close();

  return {
    trace: reader.stats,
    replayable,
    skipped,
    skippedByReason,
    urls: urls.size,
    documentUrls: entries.length - notFoundUrls,
    notFoundUrls,
    documents: writer.documents,
    bytes: writer.bytes,
    root: writer.root,
    manifest: options.manifest,
  };
}
