// The site `sc-cluster up` serves when no --site is given: a small synthetic workload (the
// paper's trace shape at 1/1000 scale, loadgen/synth) plus an index page, so a fresh checkout
// can be tried and load-tested at once. One function, so a bundled demo site can replace it.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { readManifest, synthesize } from "../loadgen/index.js";

export interface DemoSite {
  /** Document root (what the origin serves). */
  root: string;
  /** A CLF trace of requests for it and the manifest of correct answers (loadgen --verify). */
  trace: string;
  manifest: string;
  documents: number;
  bytes: number;
}

/** Scale of the paper's trace: ~87 documents, ~7 MB, ~3,900 requests; made in well under 1 s. */
const DEMO_SCALE = 0.001;
const DEMO_SEED = 1;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Makes the demo site in `dir` (new or empty). */
export async function makeDemoSite(dir: string): Promise<DemoSite> {
  const r = await synthesize({ out: dir, scale: DEMO_SCALE, seed: DEMO_SEED });
  const root = r.paths.root!;
  const manifest = await readManifest(r.paths.manifest);
  const docs = [...manifest.entries.values()].flatMap((e) => (e.status === 200 ? [e] : []));
  const bytes = docs.reduce((n, e) => n + e.size, 0);
  const links = docs
    .slice(0, 20)
    .map((e) => `<li><a href="${escapeHtml(e.url)}">${escapeHtml(e.url)}</a> (${e.size} bytes)</li>`)
    .join("\n");
  await writeFile(
    join(root, "index.html"),
    `<!doctype html>
<html><head><meta charset="utf-8"><title>sc-cluster demo site</title></head>
<body>
<h1>sc-cluster demo site</h1>
<p>Served by the cluster behind the VIP. ${docs.length} synthetic documents (${bytes} bytes) with
the size and popularity shape of the Socket Cloning paper's trace; their bytes are reproducible
(docs/loadgen.md). Replay the trace against the cluster with <code>sc-cluster loadgen</code>.</p>
<ul>
${links}
</ul>
</body></html>
`,
  );
  return { root, trace: r.paths.trace, manifest: r.paths.manifest, documents: docs.length, bytes };
}
