// The dashboard page: draws the topology once from /api/cluster, then follows /api/events
// (server-sent events: `snapshot` once a second, `replay` on each change). Plain browser
// JavaScript, no build step; the server is cluster/dashboard/server.ts.
/* global document, fetch, EventSource */

const SVG = "http://www.w3.org/2000/svg";
const $ = (sel) => document.querySelector(sel);

let cluster = null;
const nodeRows = new Map(); // host -> { row cells, svg group }

function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

const int = (v) => (v === null || v === undefined ? "–" : Math.round(v).toLocaleString("en-US"));
const perSec = (v) => (v === null || v === undefined ? "–" : v === 0 ? "0" : v < 10 ? v.toFixed(1) : int(v));
const pct = (v) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)} %`);
function bytes(v) {
  if (v === null || v === undefined) return "–";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}
const mbits = (bps) => (bps === null || bps === undefined ? "–" : `${((bps * 8) / 1e6).toFixed(1)} Mbit/s`);

/** Boxes and links: client -> dispatcher -> nodes -> origin. */
function drawTopology() {
  const root = $("#topology");
  const n = cluster.nodes.length;
  const rowH = 58;
  const height = Math.max(n * rowH + 20, 170);
  const mid = height / 2;
  root.setAttribute("viewBox", `0 0 920 ${height}`);
  root.replaceChildren();

  const box = (x, y, w, h, lines, cls = "") => {
    const g = svg("g", { class: cls });
    g.append(svg("rect", { x, y, width: w, height: h, rx: 6 }));
    lines.forEach((t, i) =>
      g.append(svg("text", { x: x + 10, y: y + 18 + i * 15, class: i === 0 ? "title" : "" }, t)),
    );
    root.append(g);
    return g;
  };
  const line = (x1, y1, x2, y2, cls = "") => root.append(svg("line", { x1, y1, x2, y2, class: cls }));

  box(10, mid - 25, 130, 50, ["client", cluster.client.ip]);
  line(140, mid, 210, mid);
  root.append(svg("text", { x: 144, y: mid - 6, class: "edge" }, "to the VIP"));
  const d = box(210, mid - 33, 190, 66, ["dispatcher", `${cluster.dispatcher.ip}, VIP ${cluster.vip}`, ""]);
  d.lastChild.setAttribute("id", "dispatcher-line");
  const originY = mid - 25;
  box(760, originY, 150, 50, ["origin", cluster.origin.url.replace(/^http:\/\//, "")]);

  cluster.nodes.forEach((node, i) => {
    const y = 10 + i * rowH + (height - 20 - n * rowH) / 2;
    const cy = y + 23;
    line(400, mid, 470, cy);
    const label = svg("text", { x: 406, y: (mid + cy) / 2 + (cy < mid ? -4 : 12), class: "edge" }, "");
    root.append(label);
    line(680, cy, 760, mid, "origin-link");
    const g = box(470, y, 210, 46, [`${node.host}  ${node.ip}`, ""], "node");
    const row = nodeRows.get(node.host);
    row.svg = g;
    row.svgStats = g.lastChild;
    row.svgEdge = label;
  });
}

function drawTable() {
  const body = $("#nodes tbody");
  body.replaceChildren();
  for (const node of cluster.nodes) {
    const tr = document.createElement("tr");
    tr.dataset.host = node.host;
    tr.className = "node";
    const cells = {};
    for (const key of [
      "host",
      "ip",
      "health",
      "rps",
      "requests",
      "clonesSent",
      "clonesReceived",
      "hitRatio",
      "bytes",
      "out",
      "dispatcher",
      "scheduled",
    ]) {
      const td = document.createElement("td");
      td.dataset.stat = key;
      tr.append(td);
      cells[key] = td;
    }
    cells.host.textContent = node.host;
    cells.ip.textContent = node.ip;
    body.append(tr);
    nodeRows.set(node.host, { cells });
  }
}

function setText(td, text, flashIfChanged = false) {
  if (flashIfChanged && td.textContent !== text && td.textContent !== "") {
    td.classList.remove("flash");
    void td.offsetWidth; // restart the animation
    td.classList.add("flash");
  }
  td.textContent = text;
}

function update(s) {
  for (const v of s.nodes) {
    const row = nodeRows.get(v.host);
    if (!row) continue;
    const c = row.cells;
    const health = !v.up
      ? `down (${v.error ?? "no answer"})`
      : v.dispatcher && !v.dispatcher.eligible
        ? "up, not scheduled"
        : "up";
    setText(c.health, health);
    c.health.className = v.up ? "" : "down";
    setText(c.rps, perSec(v.requestsPerSec));
    setText(c.requests, int(v.requests));
    setText(c.clonesSent, int(v.clonesSent), true);
    setText(c.clonesReceived, int(v.clonesReceived), true);
    setText(c.hitRatio, pct(v.cacheHitRatio));
    setText(c.bytes, bytes(v.bytesOut));
    setText(c.out, mbits(v.bytesOutPerSec));
    setText(c.dispatcher, v.dispatcher ? `${int(v.dispatcher.active)} / ${int(v.dispatcher.inactive)}` : "–");
    setText(c.scheduled, v.dispatcher ? perSec(v.dispatcher.scheduledPerSec) : "–");
    if (row.svg) {
      const cloning = (v.clonesSentPerSec ?? 0) > 0;
      row.svg.setAttribute("class", `node${v.up ? "" : " down"}${cloning ? " cloning" : ""}`);
      row.svgStats.textContent = v.up
        ? `${perSec(v.requestsPerSec)} req/s, ${v.clonesSent === null ? "no cloning" : `${perSec(v.clonesSentPerSec)} clones/s`}`
        : "down";
      row.svgEdge.textContent = v.dispatcher
        ? `${int(v.dispatcher.active + v.dispatcher.inactive)} conns`
        : "";
    }
  }
  const t = s.totals;
  setText($("#total-rps"), perSec(t.requestsPerSec));
  setText($("#total-requests"), int(t.requests));
  setText($("#total-clones-sent"), int(t.clonesSent));
  setText($("#total-clones-received"), int(t.clonesReceived));
  setText($("#total-hit-ratio"), pct(t.cacheHitRatio));
  setText($("#total-bytes"), bytes(t.bytesOut));
  setText($("#total-out"), mbits(t.bytesOutPerSec));
  setText($("#total-dispatcher"), `${int(s.dispatcher.connections)} tracked`);
  const dl = $("#dispatcher-line");
  if (dl)
    dl.textContent = s.dispatcher.up
      ? `${s.dispatcher.scheduler}, ${int(s.dispatcher.connections)} conns, ${perSec(s.dispatcher.packetsPerSec)} pkt/s`
      : `down (${s.dispatcher.error ?? "no answer"})`;
}

function showReplay(r) {
  const button = $("#replay-start");
  const status = $("#replay-status");
  button.disabled = !r.available || r.running;
  if (!r.available) {
    status.dataset.state = "unavailable";
    status.textContent = r.unavailableReason;
    return;
  }
  if (r.running) {
    status.dataset.state = "running";
    status.textContent = `Replaying since ${new Date(r.startedAt).toLocaleTimeString()}... watch the clone counters.`;
    return;
  }
  const last = r.last;
  if (!last) {
    status.dataset.state = "idle";
    status.textContent = "";
    return;
  }
  status.dataset.state = last.ok ? "ok" : "failed";
  if (last.problem) {
    status.textContent = `The replay did not run: ${last.problem}`;
    return;
  }
  const clones =
    last.clonesDuring === null ? "" : `; the nodes sent ${int(last.clonesDuring)} clones meanwhile`;
  const errors = Object.entries(last.errorsByKind)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  status.textContent =
    `${last.ok ? "OK" : "FAILED"}: ${int(last.requests)} requests in ${last.elapsedS.toFixed(1)} s ` +
    `(${int(last.rps)} req/s, ${last.mbps.toFixed(1)} Mbit/s), ${int(last.verified)} verified byte for byte, ` +
    `${int(last.verifyFailures)} verification failures, ${int(last.errors)} errors${errors ? ` (${errors})` : ""}` +
    `${last.latencyMs ? `; latency p50 ${last.latencyMs.p50.toFixed(1)} ms, p99 ${last.latencyMs.p99.toFixed(1)} ms` : ""}` +
    clones +
    ".";
}

async function startReplay() {
  $("#replay-start").disabled = true;
  const res = await fetch("/api/replay", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  if (!res.ok) {
    const status = $("#replay-status");
    status.dataset.state = "failed";
    status.textContent = (await res.json()).error;
  }
}

function connect() {
  const conn = $("#connection");
  const events = new EventSource("/api/events");
  events.addEventListener("open", () => {
    conn.dataset.state = "live";
    conn.textContent = "live";
  });
  events.addEventListener("error", () => {
    conn.dataset.state = "lost";
    conn.textContent = "no connection to sc-cluster up (stopped?), retrying";
  });
  events.addEventListener("snapshot", (e) => update(JSON.parse(e.data)));
  events.addEventListener("replay", (e) => showReplay(JSON.parse(e.data)));
}

async function main() {
  cluster = await (await fetch("/api/cluster")).json();
  document.title = `sc-cluster ${cluster.prefix} dashboard`;
  $("#summary").textContent =
    `${cluster.nodes.length} nodes, mode ${cluster.mode}, scheduler ${cluster.scheduler}, ` +
    `VIP ${cluster.vip}, site ${cluster.demo ? "the demo site" : cluster.site}`;
  const reach = $("#reach");
  if (cluster.exposed) {
    reach.append("From this machine: ");
    const a = document.createElement("a");
    a.href = cluster.vipUrl;
    a.textContent = cluster.vipUrl;
    reach.append(a, ` (or curl ${cluster.vipUrl}).`);
  } else {
    reach.textContent = `From the client host: ip netns exec ${cluster.client.netns} curl ${cluster.vipUrl}`;
  }
  const b = cluster.replay.bounds;
  $("#replay-about").textContent =
    `Replays the demo site's trace from the client host through the VIP, ${b.conns} keep-alive connections, ` +
    `at most ${int(b.requests)} requests or ${b.durationS} s, and checks every response byte for byte ` +
    "against the manifest (sc-cluster loadgen --verify).";
  $("#replay-start").addEventListener("click", () => void startReplay());
  drawTable();
  drawTopology();
  connect();
}

void main();
