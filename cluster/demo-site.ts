// The site `sc-cluster up` (and `npm start`) serves when no --site is given. Made at start-up,
// in well under a second, from three parts:
//   - the bundled pages (cluster/demo-site/: HTML linking to each other, a stylesheet, SVG
//     drawings), with a few {{placeholders}} filled in;
//   - PNG images computed here (demo-images.ts) and a 20 MiB file of reproducible bytes;
//   - the synthetic workload of `sc-cluster trace synth` at 1/1000 of the paper's trace, so
//     there is enough for a verified replay to make every node clone (docs/loadgen.md).
// Plus a trace that mixes both and a manifest of every document, for `loadgen --verify`. Nothing
// binary or large is committed; the same bytes come out on every machine.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { documentChunks, documentSha256, readManifest, synthesize } from "../loadgen/index.js";
import { ManifestWriter, type DocumentEntry, type ManifestHeader } from "../loadgen/manifest.js";
import { demoImages } from "./demo-images.js";

export interface DemoSite {
  /** Document root (what the origin serves). */
  root: string;
  /** A CLF trace of requests for it and the manifest of correct answers (loadgen --verify). */
  trace: string;
  manifest: string;
  /** Documents in the root and their bytes (pages, images, the large file, the workload). */
  documents: number;
  bytes: number;
  /** The large file: its URL, size and SHA-256. */
  large: { url: string; size: number; sha256: string };
}

export interface DemoSiteOptions {
  /** The client host's namespace, for the commands the pages show (default sc-client). */
  clientNetns?: string;
}

/** The bundled pages, next to this module's source (dist/cluster/ -> cluster/demo-site/). */
export const DEMO_PAGES_DIR = fileURLToPath(new URL("../../cluster/demo-site/", import.meta.url));

/** Scale of the paper's trace: ~87 documents, ~7 MB, ~3,900 requests. */
const WORKLOAD_SCALE = 0.001;
const WORKLOAD_SEED = 1;
export const LARGE_FILE_URL = "/files/demo-20MiB.bin";
const LARGE_FILE_SIZE = 20 * 1024 * 1024;
/** One request for a page or image of the site after every this many workload requests. */
const SITE_REQUEST_EVERY = 8;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Replaces every {{name}}; a placeholder without a value is an error (a page would show it). */
export function fillTemplate(text: string, values: Record<string, string>, name = "page"): string {
  return text.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const v = values[key];
    if (v === undefined) throw new Error(`demo site: ${name} uses {{${key}}}, which has no value`);
    return v;
  });
}

/** "7.1 MB", "20 MiB": sizes as the pages show them. */
function sizeText(bytes: number): string {
  if (bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}

/**
 * The trace: every line of the workload's trace, and after every `every` lines one request
 * for a file of the site (cycling through `siteUrls`), with the same client and time as the
 * line before it. CLF, GET, status 200 and the document's size, as `trace synth` writes.
 */
export function mixTrace(
  workload: string[],
  siteUrls: [url: string, size: number][],
  every: number,
): string[] {
  const out: string[] = [];
  let next = 0;
  workload.forEach((line, i) => {
    out.push(line);
    if ((i + 1) % every !== 0 || siteUrls.length === 0) return;
    const [url, size] = siteUrls[next++ % siteUrls.length]!;
    const m = /^(\S+ \S+ \S+ \[[^\]]*\]) /.exec(line);
    if (m) out.push(`${m[1]} "GET ${url} HTTP/1.0" 200 ${size}`);
  });
  return out;
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p)));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

/** The synthetic workload `trace synth` writes in dir: root/, its trace and its manifest. */
export interface Workload {
  root: string;
  header: ManifestHeader;
  /** Its documents (status 200 entries of its manifest). */
  docs: DocumentEntry[];
  /** Its trace's lines. */
  trace: string[];
  bytes: number;
}

/** The large file: its URL, size and SHA-256 (DemoSite.large). */
type LargeFile = DemoSite["large"];

/** Makes the demo site in `dir` (new or empty): dir/root, dir/trace.log, dir/manifest.jsonl. */
export async function makeDemoSite(dir: string, options: DemoSiteOptions = {}): Promise<DemoSite> {
  const workload = await synthesizeWorkload(dir);
  // Documents the site adds to the workload's: path -> bytes (the large file is streamed).
  const added = new Map<string, Buffer>(demoImages());
  const large = await writeLargeFile(workload.root);
  const values = pageValues(workload, large, dir, options.clientNetns ?? "sc-client");
  for (const [path, bytes] of await fillPages(values)) added.set(path, bytes);
  await writeDocuments(workload.root, added);
  const siteEntries = siteManifestEntries(added);
  const totals = siteTotals(workload, added, large);
  const manifest = writeSiteManifest(dir, workload, siteEntries, large, totals);
  const trace = await writeSiteTrace(dir, workload.trace, siteEntries);
  return { root: workload.root, trace, manifest, ...totals, large };
}

async function synthesizeWorkload(dir: string): Promise<Workload> {
  // writeRoot is on (synthesize's default): the documents are written, root is set.
  const synth = await synthesize({ out: dir, scale: WORKLOAD_SCALE, seed: WORKLOAD_SEED });
  const root = synth.paths.root;
  if (root === null) throw new Error("demo site: the workload was synthesized without its documents");
  const manifest = await readManifest(synth.paths.manifest);
  const docs = [...manifest.entries.values()].filter((e): e is DocumentEntry => e.status === 200);
  return {
    root,
    header: manifest.header,
    docs,
    trace: (await readFile(synth.paths.trace, "utf8")).split("\n").filter((l) => l !== ""),
    bytes: docs.reduce((n, e) => n + e.size, 0),
  };
}

/** The large file of reproducible bytes (content.ts), streamed to disk. */
async function writeLargeFile(root: string): Promise<LargeFile> {
  const path = join(root, LARGE_FILE_URL);
  await mkdir(dirname(path), { recursive: true });
  const out = createWriteStream(path);
  for (const chunk of documentChunks(LARGE_FILE_URL, LARGE_FILE_SIZE))
    if (!out.write(chunk)) await once(out, "drain");
  out.end();
  await once(out, "finish");
  return {
    url: LARGE_FILE_URL,
    size: LARGE_FILE_SIZE,
    sha256: documentSha256(LARGE_FILE_URL, LARGE_FILE_SIZE),
  };
}

/** How often each URL is requested in a CLF trace. */
export function requestCounts(trace: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of trace) {
    const url = /"GET (\S+) /.exec(line)?.[1];
    if (url) counts.set(url, (counts.get(url) ?? 0) + 1);
  }
  return counts;
}

/** The pages' table of the most requested documents: a row per document, most requested first. */
export function topDocumentRows(
  docs: readonly DocumentEntry[],
  counts: ReadonlyMap<string, number>,
  n = 15,
): string {
  return [...docs]
    .sort((a, b) => (counts.get(b.url) ?? 0) - (counts.get(a.url) ?? 0))
    .slice(0, n)
    .map(
      (e) =>
        `<tr><td><a href="${escapeHtml(e.url)}">${escapeHtml(e.url)}</a></td><td>${e.size}</td>` +
        `<td>${counts.get(e.url) ?? 0}</td></tr>`,
    )
    .join("\n        ");
}

/** The values of the pages' {{placeholders}}. */
export function pageValues(
  workload: Pick<Workload, "docs" | "trace" | "bytes">,
  large: LargeFile,
  dir: string,
  clientNetns: string,
): Record<string, string> {
  const siteRequests = Math.floor(workload.trace.length / SITE_REQUEST_EVERY);
  return {
    documents: String(workload.docs.length),
    bytes_text: sizeText(workload.bytes),
    big_url: large.url,
    big_size: String(large.size),
    big_text: sizeText(large.size),
    big_sha256: large.sha256,
    trace: escapeHtml(join(dir, "trace.log")),
    manifest: escapeHtml(join(dir, "manifest.jsonl")),
    requests: String(workload.trace.length + siteRequests),
    client_netns: escapeHtml(clientNetns),
    top_documents: topDocumentRows(workload.docs, requestCounts(workload.trace)),
  };
}

/** The bundled pages by URL path, the HTML ones with their placeholders filled. */
async function fillPages(values: Record<string, string>): Promise<Map<string, Buffer>> {
  const pages = new Map<string, Buffer>();
  for (const file of await listFiles(DEMO_PAGES_DIR)) {
    const path = "/" + relative(DEMO_PAGES_DIR, file);
    const text = await readFile(file);
    pages.set(
      path,
      path.endsWith(".html") ? Buffer.from(fillTemplate(text.toString("utf8"), values, path)) : text,
    );
  }
  return pages;
}

async function writeDocuments(root: string, docs: ReadonlyMap<string, Buffer>): Promise<void> {
  for (const [path, bytes] of docs) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), bytes);
  }
}

function manifestEntry(url: string, doc: string, size: number, sha256: string): DocumentEntry {
  return { url, status: 200, doc, size, sha256, kinds: ["get"] };
}

/** The manifest entries of the site's own documents, and "/" (which is index.html). */
export function siteManifestEntries(added: ReadonlyMap<string, Buffer>): DocumentEntry[] {
  const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
  const entries = [...added].map(([path, bytes]) => manifestEntry(path, path, bytes.length, sha(bytes)));
  const index = added.get("/index.html");
  if (!index) throw new Error("demo site: the bundled pages have no index.html");
  entries.push(manifestEntry("/", "/index.html", index.length, sha(index)));
  return entries;
}

/** Documents in the root and their bytes: the workload's, the site's, the large file. */
export function siteTotals(
  workload: Pick<Workload, "docs" | "bytes">,
  added: ReadonlyMap<string, Buffer>,
  large: LargeFile,
): { documents: number; bytes: number } {
  return {
    documents: workload.docs.length + added.size + 1,
    bytes: workload.bytes + [...added.values()].reduce((n, b) => n + b.length, 0) + large.size,
  };
}

/** The manifest: the workload's documents, the site's, the large file; returns its path. */
function writeSiteManifest(
  dir: string,
  workload: Workload,
  siteEntries: readonly DocumentEntry[],
  large: LargeFile,
  totals: { documents: number; bytes: number },
): string {
  const entries = [
    ...workload.docs,
    ...siteEntries,
    manifestEntry(large.url, large.url, large.size, large.sha256),
  ];
  const path = join(dir, "manifest.jsonl");
  const w = new ManifestWriter(path, {
    ...workload.header,
    entries: entries.length,
    documents: totals.documents,
    bytes: totals.bytes,
    source: {
      generator: "sc-cluster demo site (cluster/demo-site.ts)",
      workload: workload.header.source,
      note: "content scheme applies to the workload and the large file; pages and images are bundled or computed",
    },
  });
  for (const e of entries) w.add(e);
  w.close();
  return path;
}

/**
 * The trace: the workload with the site's pages and images in between (not the large file:
 * 20 MiB per replay would drown the rest; fetch it with curl). Returns its path.
 */
async function writeSiteTrace(
  dir: string,
  workloadTrace: string[],
  siteEntries: readonly DocumentEntry[],
): Promise<string> {
  const siteUrls = siteEntries
    .filter((e) => e.url !== "/index.html")
    .map((e): [string, number] => [e.url, e.size]);
  const path = join(dir, "trace.log");
  await writeFile(path, mixTrace(workloadTrace, siteUrls, SITE_REQUEST_EVERY).join("\n") + "\n");
  return path;
}
