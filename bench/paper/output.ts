// Writes a benchmark's results: JSON (every parameter and raw figure), Markdown tables, and the
// plots as SVG (and PNG through chromium).
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { MicroResult, SweepResult, TraceResult } from "./analysis.js";
import { renderPlot, type PlotSpec } from "../../loadgen/plot.js";
import { renderPng, svgSize } from "./render.js";
import {
  microMarkdown,
  microPlot,
  microRpsPlot,
  sweepMarkdown,
  sweepPlot,
  traceMarkdown,
  tracePlot,
} from "./report.js";

export interface Written {
  markdown: string;
  paths: string[];
}

interface WriteOptions {
  png: boolean;
  log: (line: string) => void;
}

async function writePlots(dir: string, plots: Record<string, PlotSpec>, o: WriteOptions): Promise<string[]> {
  const paths: string[] = [];
  for (const [name, spec] of Object.entries(plots)) {
    const svg = renderPlot(spec);
    const svgPath = join(dir, `${name}.svg`);
    await writeFile(svgPath, svg);
    paths.push(svgPath);
    if (!o.png) continue;
    const pngPath = join(dir, `${name}.png`);
    const { width, height } = svgSize(svg);
    try {
      await renderPng(svgPath, pngPath, width, height);
      paths.push(pngPath);
    } catch (err) {
      o.log(`no PNG for ${name}: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  return paths;
}

const json = (v: unknown) =>
  JSON.stringify(v, (_k, x: unknown) => (typeof x === "number" && !Number.isFinite(x) ? String(x) : x), 2) +
  "\n";

export async function writeMicro(r: MicroResult, dir: string, o: WriteOptions): Promise<Written> {
  await mkdir(dir, { recursive: true });
  const markdown = microMarkdown(r);
  const paths = [join(dir, "micro.json"), join(dir, "micro.md")];
  await writeFile(paths[0]!, json(r));
  await writeFile(paths[1]!, markdown);
  paths.push(...(await writePlots(dir, { micro: microPlot(r), "micro-rps": microRpsPlot(r) }, o)));
  return { markdown, paths };
}

export async function writeTrace(r: TraceResult, dir: string, o: WriteOptions): Promise<Written> {
  await mkdir(dir, { recursive: true });
  const markdown = traceMarkdown(r);
  const paths = [join(dir, "trace.json"), join(dir, "trace.md")];
  await writeFile(paths[0]!, json(r));
  await writeFile(paths[1]!, markdown);
  paths.push(...(await writePlots(dir, { trace: tracePlot(r) }, o)));
  return { markdown, paths };
}

export async function writeSweep(r: SweepResult, dir: string, o: WriteOptions): Promise<Written> {
  await mkdir(dir, { recursive: true });
  const markdown = sweepMarkdown(r);
  const paths = [join(dir, "sweep.json"), join(dir, "sweep.md")];
  await writeFile(paths[0]!, json(r));
  await writeFile(paths[1]!, markdown);
  paths.push(...(await writePlots(dir, { sweep: sweepPlot(r) }, o)));
  return { markdown, paths };
}
