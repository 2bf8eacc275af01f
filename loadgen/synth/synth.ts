// `trace synth`: writes a synthetic workload (model.ts) to a directory:
//   trace.log       Common Log Format, one GET per request, in replay order
//   root/           the document root (content from content.ts, mtime SITE_MTIME)
//   manifest.jsonl  for `loadgen --verify`
//   params.json     every parameter, the calibrated values and what was achieved
// Everything is streamed: documents chunk by chunk, the trace in 1 MiB blocks.
import { closeSync, mkdirSync, openSync, readdirSync, writeFileSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { CONTENT_SCHEME, documentSha256 } from "../content.js";
import { httpDate, ManifestWriter, MANIFEST_FORMAT, MANIFEST_VERSION, SITE_MTIME } from "../manifest.js";
import { SiteWriter } from "../site-writer.js";
import { formatClfDate } from "../trace/formats.js";
import {
  buildModel,
  documentPath,
  PAPER_TRACE,
  requestSequence,
  zipfSlope,
  type SynthModel,
  type SynthParams,
} from "./model.js";
import { UserError } from "../../common/errors.js";

export class SynthError extends UserError {
  constructor(message: string) {
    super(message, "ERR_SYNTH_OPTION");
  }
}

export interface SynthOptions extends Partial<SynthParams> {
  out: string;
  /** Write the document root (default true); without it, only trace, manifest and params. */
  writeRoot?: boolean;
}

export interface SynthResult {
  params: SynthParams;
  model: Omit<SynthModel, "sizes" | "requestCounts" | "params">;
  zipfSlope: number;
  requestedFiles: number;
  paths: { trace: string; root: string | null; manifest: string; params: string };
  /** Seconds per phase (not stored in params.json, which is deterministic). */
  timings: { model: number; root: number; trace: number; total: number };
}

function checkParams(p: SynthParams): void {
  const positive: (keyof SynthParams)[] = [
    "scale",
    "requests",
    "files",
    "totalBytes",
    "requestMeanBytes",
    "zipfAlpha",
    "bodySigma",
    "tailK",
    "tailAlpha",
    "maxFileBytes",
    "spanSeconds",
    "hosts",
  ];
  for (const k of positive) {
    if (!(Number.isFinite(p[k]) && p[k] > 0))
      throw new SynthError(`${k} must be a positive number, got ${p[k]}`);
  }
  if (!Number.isSafeInteger(p.seed) || p.seed < 0 || p.seed > 0xffffffff)
    throw new SynthError(`seed must be a whole number in 0..4294967295, got ${p.seed}`);
  if (p.maxFileBytes <= p.tailK) throw new SynthError("maxFileBytes must be larger than tailK");
  const files = Math.round(p.files * p.scale);
  if (files > 50_000_000) throw new SynthError(`${files} files is more than this generator is meant for`);
}

type SynthPaths = SynthResult["paths"];

/** Creates the output directory, which must be new or empty; returns where each file goes. */
function prepareOutput(out: string, writeRoot: boolean): SynthPaths {
  const dir = resolve(out);
  mkdirSync(dir, { recursive: true });
  if (readdirSync(dir).length > 0) throw new SynthError(`output directory '${out}' is not empty`);
  return {
    trace: join(dir, "trace.log"),
    root: writeRoot ? join(dir, "root") : null,
    manifest: join(dir, "manifest.jsonl"),
    params: join(dir, "params.json"),
  };
}

/** Documents (if a root is written) and manifest, in file-id order; returns how many files are requested. */
function writeDocuments(
  model: SynthModel,
  params: SynthParams,
  paths: SynthPaths,
  docPaths: string[],
): number {
  const writer = paths.root ? new SiteWriter(paths.root, SITE_MTIME) : null;
  const manifest = new ManifestWriter(paths.manifest, {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    content: CONTENT_SCHEME,
    mtime: SITE_MTIME,
    last_modified: httpDate(SITE_MTIME),
    entries: model.files,
    documents: model.files,
    bytes: model.achieved.totalBytes,
    source: { generator: "sc-cluster trace synth", seed: params.seed, scale: params.scale },
  });
  let requestedFiles = 0;
  for (let id = 0; id < model.files; id++) {
    const doc = docPaths[id]!;
    const size = model.sizes[id]!;
    const sha256 = writer ? writer.write(doc, size) : documentSha256(doc, size);
    const requested = model.requestCounts[id]! > 0;
    if (requested) requestedFiles++;
    manifest.add({ url: doc, status: 200, doc, size, sha256, kinds: requested ? ["get"] : [] });
  }
  manifest.close();
  return requestedFiles;
}

/**
 * Line j of n of the trace: its timestamp spread evenly over the span, its host drawn from
 * (seed, j), a GET of the document with its size.
 */
export function synthTraceLine(params: SynthParams, j: number, n: number, doc: string, size: number): string {
  const t = params.startTime + Math.floor((j * params.spanSeconds) / n);
  // A cheap integer hash of (seed, j): hosts need no statistical quality.
  const h = (Math.imul(j + 1, 0x9e3779b1) ^ (params.seed >>> 0)) >>> 0;
  const host = `h${h % params.hosts}.synth.invalid`;
  return `${host} - - [${formatClfDate(t)}] "GET ${doc} HTTP/1.0" 200 ${size}\n`;
}

/** The trace, in replay order, written in 1 MiB blocks. */
function writeTrace(model: SynthModel, params: SynthParams, path: string, docPaths: string[]): void {
  const seq = requestSequence(model);
  const fd = openSync(path, "w");
  try {
    let buf = "";
    for (let j = 0; j < seq.length; j++) {
      const id = seq[j]!;
      buf += synthTraceLine(params, j, seq.length, docPaths[id]!, model.sizes[id]!);
      if (buf.length >= 1 << 20) {
        writeSync(fd, buf);
        buf = "";
      }
    }
    if (buf) writeSync(fd, buf);
  } finally {
    closeSync(fd);
  }
}

/** params.json: every parameter, the calibrated values and what was achieved (deterministic: no timings). */
export function synthParamsJson(
  params: SynthParams,
  model: SynthModel,
  achieved: { zipfSlope: number; requestedFiles: number; root: boolean },
): string {
  return (
    JSON.stringify(
      {
        generator: "sc-cluster trace synth",
        params,
        scaled: {
          files: model.files,
          requests: model.requests,
          total_bytes_target: params.totalBytes * params.scale,
        },
        calibrated: { tail_fraction: model.tailFraction, size_popularity_rho: model.rho },
        achieved: {
          total_bytes: model.achieved.totalBytes,
          mean_file_bytes: Math.round(model.achieved.meanFileBytes),
          request_mean_bytes: Math.round(model.achieved.requestMeanBytes),
          median_file_bytes: model.achieved.medianFileBytes,
          max_file_bytes: model.achieved.maxFileBytes,
          zipf_slope: Math.round(achieved.zipfSlope * 1000) / 1000,
          requested_files: achieved.requestedFiles,
        },
        files: { trace: "trace.log", root: achieved.root ? "root" : null, manifest: "manifest.jsonl" },
      },
      null,
      2,
    ) + "\n"
  );
}

export async function synthesize(options: SynthOptions): Promise<SynthResult> {
  const { out, writeRoot = true, ...overrides } = options;
  const params: SynthParams = { ...PAPER_TRACE, ...overrides };
  checkParams(params);
  const paths = prepareOutput(out, writeRoot);
  const t0 = performance.now();
  const model = buildModel(params);
  const t1 = performance.now();
  const docPaths: string[] = [];
  for (let id = 0; id < model.files; id++) docPaths.push(documentPath(id, model.sizes[id]!));
  const requestedFiles = writeDocuments(model, params, paths, docPaths);
  const t2 = performance.now();
  writeTrace(model, params, paths.trace, docPaths);
  const t3 = performance.now();
  const slope = zipfSlope(Array.from(model.requestCounts).sort((a, b) => b - a));
  writeFileSync(
    paths.params,
    synthParamsJson(params, model, { zipfSlope: slope, requestedFiles, root: paths.root !== null }),
  );
  const { sizes: _s, requestCounts: _c, params: _p, ...summary } = model;
  const s = (a: number, b: number) => Math.round(b - a) / 1000;
  return {
    params,
    model: summary,
    zipfSlope: slope,
    requestedFiles,
    paths,
    timings: { model: s(t0, t1), root: s(t1, t2), trace: s(t2, t3), total: s(t0, performance.now()) },
  };
}
