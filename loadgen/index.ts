// The load generator's programmatic API (for bench/ and tests): what the CLI commands
// `site`, `trace` and `loadgen` run, without spawning them. See docs/loadgen.md.
export { runReplay, loadReplayPlan, DEFAULT_TIME_CAP_S } from "./replay/run.js";
export type { ReplayOptions, ReplayResult, ReplayProgress, StoppedBy } from "./replay/run.js";
export type { ReplayPlan, RequestClass } from "./replay/plan.js";
export { runSweep, sweepRates, sweepPlotSpec } from "./replay/sweep.js";
export type { SweepOptions, SweepResult, SweepStep } from "./replay/sweep.js";
export { runSingleUrl } from "./ab/run.js";
export type { SingleUrlOptions, SingleUrlResult } from "./ab/run.js";
export { buildSite } from "./site.js";
export type { SiteOptions, SiteResult, SiteSkipReason } from "./site.js";
export { synthesize } from "./synth/synth.js";
export type { SynthOptions, SynthResult } from "./synth/synth.js";
export { PAPER_TRACE, buildModel, type SynthParams } from "./synth/model.js";
export { TraceReader, readTrace } from "./trace/reader.js";
export type { TraceStats, FormatOption } from "./trace/reader.js";
export type { TraceRecord, TraceFormat } from "./trace/formats.js";
export { documentBytes, documentChunks, documentSha256, contentKey, CONTENT_SCHEME } from "./content.js";
export { readManifest, SITE_MTIME } from "./manifest.js";
export type { Manifest, ManifestEntry, ManifestHeader, DocumentEntry, MissingEntry } from "./manifest.js";
export { canonicalizeTarget } from "./url.js";
export { classify, Classifier } from "./classify.js";
export { formatResult, formatProgress } from "./report.js";
