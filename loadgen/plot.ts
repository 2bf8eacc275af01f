// A small SVG line plotter in the style of the paper's gnuplot figures: a framed plot area with
// ticks on all four sides, numeric tick labels, the legend inside the frame (label, then a line
// sample with its marker), min-max error bars, and the figure caption underneath. Pure: returns
// the SVG text.

export type Marker = "circle" | "square" | "triangle" | "diamond" | "cross" | "plus" | "none";

export interface PlotPoint {
  x: number;
  y: number;
  /** Error bar (e.g. the minimum and maximum of the runs). */
  lo?: number;
  hi?: number;
}

export interface PlotSeries {
  name: string;
  points: PlotPoint[];
  color: string;
  marker: Marker;
  /** stroke-dasharray of the line, e.g. "6 3". */
  dash?: string;
}

export interface PlotSpec {
  xLabel: string;
  yLabel: string;
  xScale: "linear" | "log";
  x: [number, number];
  y: [number, number];
  xTicks: number[];
  yTicks: number[];
  xTickLabel?: (v: number) => string;
  yTickLabel?: (v: number) => string;
  /** Horizontal reference lines (e.g. the 100% of a plain node). */
  hlines?: { y: number; label: string }[];
  /** Shaded spans of x behind the series (e.g. faults on a timeline); labelled when wide enough. */
  bands?: { x0: number; x1: number; color: string; label?: string }[];
  series: PlotSeries[];
  legend?: "top-right" | "bottom-right" | "top-left" | "bottom-left";
  /** "Figure 8. Normalized Efficiency", under the plot. */
  caption?: string;
  /** Small lines under the caption (the scale of the run). */
  notes?: string[];
  width?: number;
  height?: number;
}

/** gnuplot's default number format for tick labels: 1, 10, ..., 100000, 1e+06. */
export function gnuplotNumber(v: number): string {
  if (v === 0) return "0";
  if (Math.abs(v) >= 1e6 || Math.abs(v) < 1e-4) {
    const [m, e] = v.toExponential().split("e");
    const exp = Number(e);
    return `${Number(m)}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  return String(Number(v.toPrecision(6)));
}

export function escapeXml(s: string): string {
  return s.replace(
    /[<>&"']/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

const FONT = "Helvetica, Arial, 'Liberation Sans', sans-serif";

function fmt(n: number): string {
  return String(Math.round(n * 100) / 100);
}

function marker(kind: Marker, x: number, y: number, color: string): string {
  const r = 4;
  const stroke = `stroke="${color}" stroke-width="1.4" fill="none"`;
  switch (kind) {
    case "circle":
      return `<circle cx="${fmt(x)}" cy="${fmt(y)}" r="${r}" ${stroke}/>`;
    case "square":
      return `<rect x="${fmt(x - r)}" y="${fmt(y - r)}" width="${2 * r}" height="${2 * r}" ${stroke}/>`;
    case "triangle":
      return `<polygon points="${fmt(x)},${fmt(y - r - 1)} ${fmt(x - r - 0.5)},${fmt(y + r - 0.5)} ${fmt(x + r + 0.5)},${fmt(y + r - 0.5)}" ${stroke}/>`;
    case "diamond":
      return `<polygon points="${fmt(x)},${fmt(y - r - 1)} ${fmt(x + r + 1)},${fmt(y)} ${fmt(x)},${fmt(y + r + 1)} ${fmt(x - r - 1)},${fmt(y)}" ${stroke}/>`;
    case "cross":
      return `<path d="M${fmt(x - r)},${fmt(y - r)}L${fmt(x + r)},${fmt(y + r)}M${fmt(x - r)},${fmt(y + r)}L${fmt(x + r)},${fmt(y - r)}" ${stroke}/>`;
    case "plus":
      return `<path d="M${fmt(x - r - 1)},${fmt(y)}L${fmt(x + r + 1)},${fmt(y)}M${fmt(x)},${fmt(y - r - 1)}L${fmt(x)},${fmt(y + r + 1)}" ${stroke}/>`;
    case "none":
      return "";
  }
}

/** The plot's geometry: the page, the frame inside it, and the mapping of data to the page. */
export class PlotFrame {
  readonly width: number;
  readonly height: number;
  readonly left = 78;
  readonly right: number;
  readonly top = 18;
  readonly bottom: number;
  /** The notes under the caption, wrapped to the width. */
  readonly notes: string[];

  constructor(private readonly spec: PlotSpec) {
    this.width = spec.width ?? 640;
    // ~6 px per character at 11 px.
    this.notes = (spec.notes ?? []).flatMap((n) => wrapText(n, Math.floor((this.width - 20) / 6)));
    const plotBottomPad = 58 + (spec.caption ? 26 : 0) + this.notes.length * 15;
    this.height = spec.height ?? 420 + (spec.caption ? 26 : 0) + this.notes.length * 15;
    this.right = this.width - 22;
    this.bottom = this.height - plotBottomPad;
  }

  /** x of a data value (on a log axis when the spec says so). */
  x(v: number): number {
    const [x0, x1] = this.spec.x;
    const log = this.spec.xScale === "log";
    return (
      this.left +
      ((log ? Math.log10(v) - Math.log10(x0) : v - x0) / (log ? Math.log10(x1) - Math.log10(x0) : x1 - x0)) *
        (this.right - this.left)
    );
  }

  /** y of a data value. */
  y(v: number): number {
    const [y0, y1] = this.spec.y;
    return this.bottom - ((v - y0) / (y1 - y0)) * (this.bottom - this.top);
  }

  /** A data value held inside the y range. */
  clampY(v: number): number {
    const [y0, y1] = this.spec.y;
    return Math.min(Math.max(v, y0), y1);
  }
}

/** Shaded spans of x behind everything, labelled where wide enough. */
function drawBands(spec: PlotSpec, f: PlotFrame): string[] {
  const out: string[] = [];
  const [x0, x1] = spec.x;
  for (const b of spec.bands ?? []) {
    const a = f.x(Math.max(x0, b.x0));
    const w = Math.max(1, f.x(Math.min(x1, b.x1)) - a);
    out.push(
      `<rect x="${fmt(a)}" y="${f.top}" width="${fmt(w)}" height="${fmt(f.bottom - f.top)}" fill="${b.color}" fill-opacity="0.25"/>`,
    );
    if (b.label && w >= 6 * b.label.length)
      out.push(
        `<text x="${fmt(a + 2)}" y="${f.top + 12}" font-size="10" fill="#333">${escapeXml(b.label)}</text>`,
      );
  }
  return out;
}

/** Ticks inside the frame on all four sides, labels outside (gnuplot's default look). */
function drawTicks(spec: PlotSpec, f: PlotFrame): string[] {
  const out: string[] = [];
  const tick = 7;
  const xl = spec.xTickLabel ?? gnuplotNumber;
  const yl = spec.yTickLabel ?? gnuplotNumber;
  for (const v of spec.xTicks) {
    const x = fmt(f.x(v));
    out.push(
      `<path d="M${x},${fmt(f.bottom)}v${-tick}M${x},${fmt(f.top)}v${tick}" stroke="#000" stroke-width="1"/>`,
      `<text x="${x}" y="${fmt(f.bottom + 19)}" text-anchor="middle">${escapeXml(xl(v))}</text>`,
    );
  }
  if (spec.xScale === "log") {
    // Minor ticks at 2..9 of every decade.
    const [x0, x1] = spec.x;
    for (let d = Math.floor(Math.log10(x0)); d < Math.ceil(Math.log10(x1)); d++)
      for (let k = 2; k <= 9; k++) {
        const v = k * 10 ** d;
        if (v <= x0 || v >= x1) continue;
        const x = fmt(f.x(v));
        out.push(
          `<path d="M${x},${fmt(f.bottom)}v${-tick / 2}M${x},${fmt(f.top)}v${tick / 2}" stroke="#000" stroke-width="0.8"/>`,
        );
      }
  }
  for (const v of spec.yTicks) {
    const y = fmt(f.y(v));
    out.push(
      `<path d="M${f.left},${y}h${tick}M${f.right},${y}h${-tick}" stroke="#000" stroke-width="1"/>`,
      `<text x="${f.left - 8}" y="${fmt(f.y(v) + 4.5)}" text-anchor="end">${escapeXml(yl(v))}</text>`,
    );
  }
  return out;
}

/** Horizontal reference lines, dashed, with their labels. */
function drawHlines(spec: PlotSpec, f: PlotFrame): string[] {
  return (spec.hlines ?? []).flatMap((h) => {
    const y = fmt(f.y(h.y));
    return [
      `<path d="M${f.left},${y}H${f.right}" stroke="#777" stroke-width="1" stroke-dasharray="2 3"/>`,
      `<text x="${f.left + 10}" y="${fmt(f.y(h.y) - 5)}" font-size="11" fill="#555">${escapeXml(h.label)}</text>`,
    ];
  });
}

/** Series: line, error bars, markers (points outside the x range or not finite are left out). */
function drawSeries(spec: PlotSpec, f: PlotFrame): string[] {
  const out: string[] = [];
  const [x0, x1] = spec.x;
  for (const s of spec.series) {
    const pts = s.points
      .filter((p) => Number.isFinite(p.y) && p.x >= x0 && p.x <= x1)
      .sort((a, b) => a.x - b.x);
    if (pts.length === 0) continue;
    const d = pts.map((p, i) => `${i === 0 ? "M" : "L"}${fmt(f.x(p.x))},${fmt(f.y(f.clampY(p.y)))}`).join("");
    out.push(
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.6"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}/>`,
    );
    for (const p of pts) {
      if (
        p.lo !== undefined &&
        p.hi !== undefined &&
        Number.isFinite(p.lo) &&
        Number.isFinite(p.hi) &&
        p.hi > p.lo
      ) {
        const x = f.x(p.x);
        const a = fmt(f.y(f.clampY(p.lo)));
        const b = fmt(f.y(f.clampY(p.hi)));
        out.push(
          `<path d="M${fmt(x)},${a}V${b}M${fmt(x - 3)},${a}h6M${fmt(x - 3)},${b}h6" stroke="${s.color}" stroke-width="1"/>`,
        );
      }
      out.push(marker(s.marker, f.x(p.x), f.y(f.clampY(p.y)), s.color));
    }
  }
  return out;
}

/** Legend: right-aligned label, then a line sample with its marker; series with no finite point get none. */
function drawLegend(spec: PlotSpec, f: PlotFrame): string[] {
  const shown = spec.series.filter((s) => s.points.some((p) => Number.isFinite(p.y)));
  const legend = spec.legend ?? "top-right";
  const rowH = 18;
  const sample = 36;
  // Labels are right-aligned before the line sample; ~7 px per character at 13 px.
  const labelWidth = Math.max(0, ...shown.map((s) => s.name.length)) * 7;
  const lx = legend.endsWith("right") ? f.right - 14 - sample : f.left + 22 + labelWidth;
  const ly0 = legend.startsWith("top") ? f.top + 18 : f.bottom - 10 - (shown.length - 1) * rowH;
  return shown.flatMap((s, i) => {
    const y = ly0 + i * rowH;
    return [
      `<text x="${lx - 8}" y="${y + 4.5}" text-anchor="end">${escapeXml(s.name)}</text>`,
      `<path d="M${lx},${y}h${sample}" stroke="${s.color}" stroke-width="1.6"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}/>`,
      marker(s.marker, lx + sample / 2, y, s.color),
    ];
  });
}

/** Axis labels, then the caption and its notes under the plot. */
function drawLabels(spec: PlotSpec, f: PlotFrame): string[] {
  const midX = (f.left + f.right) / 2;
  const midY = (f.top + f.bottom) / 2;
  const out = [
    `<text x="${fmt(midX)}" y="${fmt(f.bottom + 42)}" text-anchor="middle">${escapeXml(spec.xLabel)}</text>`,
    `<text x="20" y="${fmt(midY)}" text-anchor="middle" transform="rotate(-90 20 ${fmt(midY)})">${escapeXml(spec.yLabel)}</text>`,
  ];
  let y = f.bottom + 42;
  if (spec.caption) {
    y += 28;
    out.push(
      `<text x="${fmt(midX)}" y="${y}" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(spec.caption)}</text>`,
    );
  }
  for (const n of f.notes) {
    y += 15;
    out.push(
      `<text x="${fmt(midX)}" y="${y}" text-anchor="middle" font-size="11" fill="#444">${escapeXml(n)}</text>`,
    );
  }
  return out;
}

export function renderPlot(spec: PlotSpec): string {
  const f = new PlotFrame(spec);
  const { width, height } = f;
  return (
    [
      `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}" font-size="13">`,
      `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
      ...drawBands(spec, f),
      ...drawTicks(spec, f),
      ...drawHlines(spec, f),
      ...drawSeries(spec, f),
      // Frame over everything.
      `<rect x="${f.left}" y="${f.top}" width="${fmt(f.right - f.left)}" height="${fmt(f.bottom - f.top)}" fill="none" stroke="#000" stroke-width="1"/>`,
      ...drawLegend(spec, f),
      ...drawLabels(spec, f),
      "</svg>",
    ].join("\n") + "\n"
  );
}

/** Round "nice" upper bound and ticks for a linear axis from 0 to at least `max`. */
export function niceAxis(max: number, targetTicks = 6): { top: number; ticks: number[] } {
  if (!(max > 0)) return { top: 1, ticks: [0, 1] };
  const raw = max / targetTicks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const top = Math.ceil(max / step) * step;
  const ticks: number[] = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push(Math.round(v * 1e9) / 1e9);
  return { top, ticks };
}

/** Splits text into lines of at most `max` characters at spaces (a longer word stays whole). */
export function wrapText(text: string, max: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > max) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}
