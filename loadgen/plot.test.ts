import { test } from "node:test";
import assert from "node:assert/strict";
import {
  escapeXml,
  gnuplotNumber,
  niceAxis,
  PlotFrame,
  renderPlot,
  wrapText,
  type PlotSpec,
} from "./plot.js";

test("gnuplotNumber formats ticks as gnuplot does (1e+06 from a million on)", () => {
  assert.deepEqual([1, 10, 100, 1000, 1e4, 1e5, 1e6, 2.5e7].map(gnuplotNumber), [
    "1",
    "10",
    "100",
    "1000",
    "10000",
    "100000",
    "1e+06",
    "2.5e+07",
  ]);
  assert.equal(gnuplotNumber(0), "0");
  assert.equal(gnuplotNumber(12.5), "12.5");
});

test("niceAxis rounds the top up to a round step", () => {
  assert.deepEqual(niceAxis(93), { top: 100, ticks: [0, 20, 40, 60, 80, 100] });
  assert.deepEqual(niceAxis(1234), { top: 1250, ticks: [0, 250, 500, 750, 1000, 1250] });
  assert.deepEqual(niceAxis(0), { top: 1, ticks: [0, 1] });
});

test("wrapText breaks at spaces and keeps long words whole", () => {
  assert.deepEqual(wrapText("aa bb cc dd", 5), ["aa bb", "cc dd"]);
  assert.deepEqual(wrapText("averyveryverylongword x", 5), ["averyveryverylongword", "x"]);
});

const SPEC: PlotSpec = {
  xLabel: "File Size (bytes)",
  yLabel: "Normalized Efficiency (%)",
  xScale: "log",
  x: [50, 2e6],
  y: [0, 120],
  xTicks: [100, 1000, 1e4, 1e5, 1e6],
  yTicks: [0, 20, 40, 60, 80, 100, 120],
  hlines: [{ y: 100, label: "plain <node>" }],
  series: [
    {
      name: "SC",
      color: "#d62728",
      marker: "circle",
      points: [
        { x: 100, y: 60, lo: 55, hi: 65 },
        { x: 1e6, y: 98 },
        { x: 1e4, y: NaN },
      ],
    },
    { name: "empty", color: "#000", marker: "square", points: [] },
  ],
  caption: "Figure 8 & co",
  notes: ["scale note"],
};

test("renderPlot draws the frame, ticks, one line per series with markers and error bars, legend and caption", () => {
  const svg = renderPlot(SPEC);
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="640" height="\d+"/);
  assert.ok(svg.trimEnd().endsWith("</svg>"));
  for (const t of ["100", "1000", "10000", "100000", "1e+06", "120"])
    assert.ok(svg.includes(`>${t}</text>`), t);
  // The SC line connects the two finite points in x order; the NaN point is left out.
  const line = /<path d="(M[^"]+)" fill="none" stroke="#d62728"/.exec(svg);
  assert.ok(line);
  assert.equal(line[1]!.split("L").length, 2);
  assert.equal((svg.match(/<circle /g) ?? []).length, 3); // two points + the legend sample
  assert.match(svg, /<path d="M[\d.]+,[\d.]+V[\d.]+M/); // one error bar
  // Text is escaped; a series without points gets no legend entry.
  assert.ok(svg.includes("plain &lt;node&gt;"));
  assert.ok(svg.includes("Figure 8 &amp; co"));
  assert.ok(!svg.includes(">empty<"));
  assert.ok(svg.includes(">SC</text>"));
});

test("renderPlot maps log and linear axes to the frame's edges", () => {
  const svg = renderPlot({ ...SPEC, x: [100, 1e6], xScale: "log", series: [] });
  const x100 = /<path d="M([\d.]+),[\d.]+v-7/.exec(svg)!;
  const frame = /<rect x="(\d+)" y="\d+" width="([\d.]+)"/.exec(svg)!;
  assert.equal(Number(x100[1]), Number(frame[1])); // x = 100 sits on the left edge
  assert.equal(escapeXml(`a<b>&"'`), "a&lt;b&gt;&amp;&quot;&#39;");
});

test("PlotFrame: the data ranges map onto the frame's edges, on log and linear axes", () => {
  for (const xScale of ["log", "linear"] as const) {
    const f = new PlotFrame({ ...SPEC, xScale, x: [10, 1000] });
    assert.equal(f.x(10), f.left);
    assert.equal(f.x(1000), f.right);
    assert.equal(f.y(0), f.bottom);
    assert.equal(f.y(120), f.top);
    assert.equal(f.clampY(-5), 0);
    assert.equal(f.clampY(500), 120);
  }
  // On the log axis 100 lies halfway between 10 and 1000; on the linear one it does not.
  const log = new PlotFrame({ ...SPEC, xScale: "log", x: [10, 1000] });
  assert.equal(log.x(100), (log.left + log.right) / 2);
  const linear = new PlotFrame({ ...SPEC, xScale: "linear", x: [0, 1000] });
  assert.equal(linear.x(100), linear.left + (linear.right - linear.left) / 10);
});

test("PlotFrame: the caption and each wrapped note line make the page taller, not the frame", () => {
  const bare = new PlotFrame({ ...SPEC, caption: undefined, notes: undefined });
  assert.deepEqual([bare.width, bare.height, bare.bottom], [640, 420, 362]);
  const long = "word ".repeat(40).trim(); // 199 characters: two lines at 103 per line
  const f = new PlotFrame({ ...SPEC, caption: "c", notes: [long, "short"] });
  assert.equal(f.notes.length, 3);
  assert.equal(f.height, 420 + 26 + 3 * 15);
  assert.equal(f.bottom, bare.bottom);
  // A fixed height keeps the room under the frame: the frame shrinks instead.
  const fixed = new PlotFrame({ ...SPEC, caption: "c", notes: ["n"], height: 300 });
  assert.deepEqual([fixed.height, fixed.bottom], [300, 300 - 58 - 26 - 15]);
});
