// a4nn-commons explorer: plain JavaScript over the JSON API, charts drawn as SVG here.
// No framework and no build step, so the package ships exactly these files and pages work offline.
// Every value from the database enters the page through textContent or setAttribute, never innerHTML.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const COLOURS = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442"];
const POLL_MS = Number(new URLSearchParams(location.search).get("poll_ms")) || 3000;
const PAGE_SIZES = [25, 50, 100, 200];
let pollTimer = null;

// ------------------------------------------------------------------ helpers
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [key, value] of Object.entries(attrs || {})) if (value !== null && value !== undefined) node.setAttribute(key, String(value));
  for (const child of children.flat(Infinity)) if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  return node;
}

class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

// The script runs from the page's <head>, so a page's requests leave while the browser is still reading the
// document; what they bring is drawn once it is there.
const domReady = new Promise((resolve) => {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", resolve, { once: true });
  else resolve();
});

async function api(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  await domReady;
  if (!response.ok) {
    const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : response.statusText;
    throw new ApiError(response.status, detail);
  }
  return body;
}

function num(value, digits = 2) {
  return value === null || value === undefined || !Number.isFinite(value) ? "—" : value.toFixed(digits);
}
const GROUPED = new Intl.NumberFormat("en-US", { maximumFractionDigits: 3 });  // one formatter: toLocaleString builds one per call
function int(value) { return value === null || value === undefined ? "—" : GROUPED.format(Number(value)); }
function pct(share) { return share === null || share === undefined ? "—" : (100 * share).toFixed(1) + " %"; }
function when(text, missing) { return text ? text.replace("T", " ").replace(/\.\d+/, "").replace(/\+00:00$/, " UTC") : (missing || "—"); }
function badge(status) { return h("span", { class: `badge ${status}` }, status); }
function cell(value, text, cls) { return h("td", { class: cls || "num", "data-value": value === null || value === undefined ? "" : value }, text); }
function fact(key, value, attrs) { return h("div", { class: "fact" }, h("div", { class: "k" }, key), h("div", { class: "v", ...(attrs || {}) }, value)); }
function errorBox(message) { return h("div", { class: "error", role: "alert" }, message); }
function modelLink(id) { return h("a", { href: `/ui/models/${id}` }, `#${id}`); }

function setMain(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

// ------------------------------------------------------------------ tooltip
const tooltip = () => document.getElementById("tooltip");
function showTip(event, text) {
  const tip = tooltip();
  tip.textContent = text;
  tip.hidden = false;
  const x = Math.min(event.clientX + 14, window.innerWidth - 350);
  tip.style.left = `${x}px`;
  tip.style.top = `${event.clientY + 14}px`;
}
function hideTip() { tooltip().hidden = true; }

// ------------------------------------------------------------------ charts
function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) { hi = lo + 1; }
  const raw = (hi - lo) / count;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

function extent(values, pad = 0.05, clamp) {
  const finite = values.filter(Number.isFinite);
  let lo = Math.min(...finite), hi = Math.max(...finite);
  if (!finite.length) { lo = 0; hi = 1; }
  if (lo === hi) { lo -= 1; hi += 1; }
  const margin = (hi - lo) * pad;
  lo -= margin; hi += margin;
  if (clamp) { lo = Math.max(clamp[0], lo); hi = Math.min(clamp[1], hi); }
  return [lo, hi];
}

// A framed plot with axes and grid; draw(layer, sx, sy, box) adds the marks (box: the plot area in viewBox units).
// One listener on the chart serves every mark: pick(event) names what is under the pointer ({ tip, href }),
// by default the nearest element carrying data-tip (and data-href), as hoverable() marks them.
function chart({ label, xLabel, yLabel, x, y, draw, width = 640, height = 340, id, integerX = false, pick = pickMark }) {
  const m = { left: 68, right: 16, top: 14, bottom: 44 };
  const sx = (v) => m.left + ((v - x[0]) / (x[1] - x[0])) * (width - m.left - m.right);
  const sy = (v) => height - m.bottom - ((v - y[0]) / (y[1] - y[0])) * (height - m.top - m.bottom);
  const root = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label, id });
  const grid = svg("g", { class: "grid" }), axes = svg("g", { class: "axis" });
  for (const t of niceTicks(x[0], x[1], 6).filter((t) => !integerX || Number.isInteger(t))) {
    grid.append(svg("line", { x1: sx(t), x2: sx(t), y1: m.top, y2: height - m.bottom }));
    axes.append(svg("text", { x: sx(t), y: height - m.bottom + 15, "text-anchor": "middle" }, String(t)));
  }
  for (const t of niceTicks(y[0], y[1], 5)) {
    grid.append(svg("line", { x1: m.left, x2: width - m.right, y1: sy(t), y2: sy(t) }));
    axes.append(svg("text", { x: m.left - 6, y: sy(t) + 4, "text-anchor": "end" }, String(t)));
  }
  axes.append(svg("path", { d: `M${m.left},${m.top}V${height - m.bottom}H${width - m.right}`, fill: "none" }));
  axes.append(svg("text", { x: (m.left + width - m.right) / 2, y: height - 8, "text-anchor": "middle" }, xLabel));
  axes.append(svg("text", { x: 14, y: (m.top + height - m.bottom) / 2, "text-anchor": "middle",
    transform: `rotate(-90 14 ${(m.top + height - m.bottom) / 2})` }, yLabel));
  const clip = `clip-${Math.random().toString(36).slice(2)}`;
  root.append(svg("defs", {}, svg("clipPath", { id: clip }, svg("rect", { x: m.left, y: m.top, width: width - m.left - m.right, height: height - m.top - m.bottom }))));
  const layer = svg("g", { "clip-path": `url(#${clip})` });
  root.append(grid, axes, layer);
  draw(layer, sx, sy, { x: m.left, y: m.top, width: width - m.left - m.right, height: height - m.top - m.bottom });
  root.addEventListener("mousemove", (e) => {
    const target = pick(e);
    target ? showTip(e, target.tip) : hideTip();
    root.style.cursor = target && target.href ? "pointer" : "";
  });
  root.addEventListener("mouseleave", hideTip);
  root.addEventListener("click", (e) => { const target = pick(e); if (target && target.href) location.href = target.href; });
  return root;
}

function pickMark(event) {
  const mark = event.target.closest && event.target.closest("[data-tip]");
  return mark ? { tip: mark.dataset.tip, href: mark.dataset.href } : null;
}

function legend(entries) {
  return h("ul", { class: "legend" }, entries.map(([colour, text, style]) =>
    h("li", {}, h("span", { class: "swatch", style: style || `background:${colour}` }), text)));
}

function linePath(points, sx, sy) {
  return points.map(([a, b], i) => `${i ? "L" : "M"}${sx(a).toFixed(1)},${sy(b).toFixed(1)}`).join("");
}

// A mark the chart's listener explains on hover (and opens on click, with href); the title serves screen readers
// (left out on charts of hundreds of marks, whose figure has its own label: a title per mark costs the page).
function hoverable(node, text, href, titled = true) {
  node.dataset.tip = text;
  if (href) node.dataset.href = href;
  if (titled) node.append(svg("title", {}, text));
  return node;
}

// ------------------------------------------------------------------ pages
const routes = [
  [/^\/ui\/?$/, searchesPage],
  [/^\/ui\/searches\/?$/, searchesPage],
  [/^\/ui\/searches\/(\d+)\/?$/, searchPage],
  [/^\/ui\/models\/?$/, modelsPage],
  [/^\/ui\/models\/(\d+)\/?$/, modelPage],
  [/^\/ui\/compare\/?$/, comparePage],
];

async function route() {
  if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
  const path = location.pathname;
  for (const [pattern, page] of routes) {
    const match = path.match(pattern);
    if (match) {
      const section = path.split("/")[2] || "searches";
      const drawn = page(...match.slice(1));  // its requests start now
      await domReady;
      document.querySelectorAll("nav a[data-nav]").forEach((a) =>
        a.toggleAttribute("aria-current", a.dataset.nav === section) && a.setAttribute("aria-current", "page"));
      try { await drawn; } catch (error) { setMain(h("h1", {}, "Could not load this page"), errorBox(error.message)); }
      document.body.dataset.ready = "1";
      return;
    }
  }
  await domReady;
  setMain(h("h1", {}, "Not found"), h("p", {}, "No explorer page at ", h("code", {}, path), "."));
  document.body.dataset.ready = "1";
}

// ---- searches
async function searchesPage() {
  document.title = "Searches · a4nn-commons";
  const searches = await api("/searches");
  const details = await Promise.all(searches.map((s) => api(`/searches/${s.id}`)));
  const table = h("table", { id: "searches-table" },
    h("caption", { class: "muted", style: "text-align:left" }, `${searches.length} searches. Epochs saved = 1 − epochs trained / (networks × configured epochs).`),
    h("thead", {}, h("tr", {}, ["id", "name", "data set", "beam", "engine", "networks", "epochs trained", "budget", "saved", "status", "started", "finished"]
      .map((t, i) => h("th", { scope: "col", class: i === 0 || (i >= 5 && i <= 8) ? "num" : null }, t)))),
    h("tbody", {}, details.map((d) => h("tr", { tabindex: 0, "data-id": d.id, "data-href": `/ui/searches/${d.id}` },
      cell(d.id, String(d.id)), h("td", {}, h("a", { href: `/ui/searches/${d.id}` }, d.name)), h("td", {}, d.dataset || "—"),
      h("td", {}, d.beam || "—"), h("td", {}, d.engine_config ? d.engine_config.function : "standalone"),
      cell(d.networks, int(d.networks)), cell(d.epochs_trained, int(d.epochs_trained)), cell(d.epochs_budget, int(d.epochs_budget)),
      cell(d.epochs_saved, pct(d.epochs_saved), "num saved"), h("td", {}, badge(d.status)), h("td", {}, when(d.started_at, "not recorded")),
      h("td", {}, when(d.finished_at))))));
  keyboardRows(table);
  setMain(h("h1", {}, "Searches"), searches.length ? table : h("p", {}, "This database holds no searches yet."));
}

// ---- one search
async function searchPage(id) {
  const params = new URLSearchParams(location.search);
  const metric = ["acc", "fitness", "pred"].includes(params.get("metric")) ? params.get("metric") : "fitness";
  const [detail, points, generations] = await Promise.all([
    api(`/searches/${id}`), api(`/searches/${id}/points?metric=${metric}`), api(`/searches/${id}/generations?metric=${metric}`)]);
  document.title = `${detail.name} · a4nn-commons`;
  const select = h("select", { id: "metric", onchange: (e) => {
    params.set("metric", e.target.value); history.replaceState(null, "", `?${params}`); route(); } },
    [["fitness", "fitness the NAS saw (what the front ranks by)"], ["acc", "last measured accuracy"], ["pred", "engine's prediction"]]
      .map(([value, text]) => h("option", { value, selected: value === metric }, text)));
  const live = detail.status === "running" ? h("p", { class: "live", id: "live" }, `live: refreshes every ${POLL_MS / 1000} s`) : null;
  setMain(
    h("p", { class: "muted" }, h("a", { href: "/ui/searches" }, "Searches"), " / ", detail.name),
    h("h1", {}, `Search ${detail.name} `, badge(detail.status)), live,
    h("div", { class: "facts", id: "search-facts" },
      fact("networks", int(detail.networks), { "data-key": "networks" }), fact("data set", `${detail.dataset || "—"} (${detail.beam || "—"} beam)`),
      fact("engine", detail.engine_config ? detail.engine_config.function : "standalone"),
      fact("epochs trained", int(detail.epochs_trained), { "data-key": "epochs_trained" }), fact("epoch budget", int(detail.epochs_budget)),
      fact("epochs saved", pct(detail.epochs_saved), { "data-key": "epochs_saved" }),
      fact("started", when(detail.started_at, "not recorded")), fact("finished", when(detail.finished_at))),
    h("p", {}, h("a", { href: `/ui/models?filter=${encodeURIComponent(`search=${detail.id}&sort=-${metric}`)}` }, "Table of this search's networks →")),
    h("form", { class: "filter", onsubmit: (e) => e.preventDefault() }, h("label", { for: "metric" }, "Accuracy axis", select)),
    h("div", { class: "row" },
      h("div", { class: "col" }, h("h2", {}, "Accuracy vs MFLOPs"), scatterFigure(points, metric)),
      h("div", { class: "col" }, h("h2", {}, "Hypervolume per generation"), hypervolumeFigure(generations),
        h("h2", {}, "Epochs saved per generation"), savedFigure(generations))),
    h("h2", {}, "Engine and search settings"), settingsBlock(detail));
  if (detail.status === "running") pollTimer = setTimeout(() => refreshSearch(id, detail.networks), POLL_MS);
}

async function refreshSearch(id, networks) {
  if (!location.pathname.match(/^\/ui\/searches\/\d+/)) return;
  try {
    const detail = await api(`/searches/${id}`);
    if (detail.networks !== networks || detail.status !== "running") {
      const y = window.scrollY;
      await route();  // redraws the page in place (no reload) with the new networks
      window.scrollTo(0, y);
      const live = document.getElementById("live");
      if (live) live.textContent = `live: updated ${new Date().toLocaleTimeString()}, refreshes every ${POLL_MS / 1000} s`;
      return;
    }
  } catch (_) { /* keep polling through a transient error */ }
  pollTimer = setTimeout(() => refreshSearch(id, networks), POLL_MS);
}

// A mark as pixel offsets from its centre with their coverage (0-1, anti-aliased) and its colour.
function stamp(scale, coverage, colour) {
  const reach = Math.ceil(5 * scale), cells = [];
  for (let dy = -reach; dy <= reach; dy += 1) {
    for (let dx = -reach; dx <= reach; dx += 1) {
      const alpha = coverage(dx, dy);
      if (alpha > 0) cells.push(dx, dy, alpha);
    }
  }
  return { cells, colour };
}

function clamp01(value) { return Math.max(0, Math.min(1, value)); }

function rgb(text, fallback) {
  const hex = (text || "").trim().match(/^#([0-9a-f]{6})$/i) ? text.trim() : fallback;
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

// "source over" of one mark onto an RGBA image (straight alpha, as ImageData holds it).
function blend(image, mark, cx, cy) {
  const { data, width, height } = image, [r, g, b] = mark.colour, cells = mark.cells;
  for (let k = 0; k < cells.length; k += 3) {
    const x = cx + cells[k], y = cy + cells[k + 1];
    if (x < 0 || y < 0 || x >= width || y >= height) continue;
    const i = (y * width + x) * 4, a = cells[k + 2], under = data[i + 3] / 255 * (1 - a), out = a + under;
    data[i] = (r * a + data[i] * under) / out;
    data[i + 1] = (g * a + data[i + 1] * under) / out;
    data[i + 2] = (b * a + data[i + 2] * under) / out;
    data[i + 3] = out * 255;
  }
}

// Accuracy against MFLOPs of up to a few thousand networks. They are painted on one canvas (a path per kind of
// mark: the browser draws thousands of SVG elements in hundreds of milliseconds, a canvas in a few); the Pareto
// front's members, few, are SVG marks on top with their titles. The chart's listener finds the network under the
// pointer (the nearest mark within 6 units), so hovering any mark still shows its network and a click opens it.
// #scatter's data-points and data-early count the marks as they are drawn; the canvas's data-domain gives its
// axes' ranges (the browser tests check that a network's mark is where the axes put it).
function scatterFigure(data, metric) {
  const at = Object.fromEntries(data.columns.map((c, i) => [c, i]));
  const rows = data.rows;
  if (!rows.length) return h("p", { class: "muted" }, "No network of this search has an accuracy and MFLOPs yet.");
  const [ID, ACC, FLOPS, EARLY] = [at.id, at.accuracy, at.flops, at.terminated_early];
  const front = new Set(data.front);
  const frontRows = rows.filter((r) => front.has(r[ID])).sort((a, b) => a[FLOPS] - b[FLOPS] || a[ACC] - b[ACC]);
  const x = extent(rows.map((r) => r[FLOPS]), 0.05), y = extent(rows.map((r) => r[ACC]), 0.06, [0, 100.5]);
  const label = { acc: "last measured accuracy (%)", fitness: "fitness the NAS saw (%)", pred: "predicted accuracy (%)" }[metric];
  const describe = (r) => `model #${r[ID]} · generation ${r[at.generation]}, index ${r[at.index]}\n${label}: ${num(r[ACC])}\n` +
    `MFLOPs: ${num(r[FLOPS])}\nepochs trained: ${num(r[at.epochs_trained], 1)} · ` +
    `${r[EARLY] ? `stopped early by the engine at epoch ${num(r[at.stop_epoch], 1)}` : r[at.status]}${front.has(r[ID]) ? "\non the Pareto front" : ""}`;
  const count = { points: 0, early: 0 };
  let nearest = () => null;
  const pick = (event) => {
    const mark = event.target.closest && event.target.closest("[data-id]");
    const r = mark ? rows.find((row) => String(row[ID]) === mark.dataset.id) : nearest(event);
    return r ? { tip: describe(r), href: `/ui/models/${r[ID]}` } : null;
  };
  const plot = chart({ id: "scatter", label: `scatter of ${data.shown} networks, ${label} against MFLOPs, Pareto front of ${front.size}`,
    xLabel: "MFLOPs (multiply-accumulates / 1e6)", yLabel: label, x, y, pick, draw: (layer, sx, sy, box) => {
      // canvas pixels per viewBox unit: the figure is drawn at about one CSS pixel per unit (max-width 640 px)
      const scale = Math.max(1, Math.ceil(window.devicePixelRatio || 1));
      const canvas = h("canvas", { class: "marks", width: Math.round(box.width * scale), height: Math.round(box.height * scale),
        "data-domain": [x[0], x[1], y[0], y[1]].join(",") });
      canvas.style.cssText = "display:block;width:100%;height:100%";
      const holder = svg("foreignObject", { x: box.x, y: box.y, width: box.width, height: box.height });
      holder.append(canvas);
      layer.append(holder);
      // The marks are blended into the canvas's pixels here: a software canvas (no GPU) rasterises thousands
      // of anti-aliased shapes, or copies thousands of images, in 50-150 ms; stamping a precomputed coverage
      // mask per mark takes a few. Complete: a filled circle of radius 4 at 55 % opacity; stopped early: the
      // outline of a 7-unit square, 1.4 wide (as the SVG marks were).
      const style = getComputedStyle(document.documentElement);
      const dot = stamp(scale, (dx, dy) => 0.55 * clamp01(4 * scale + 0.5 - Math.hypot(dx, dy)),
        rgb(style.getPropertyValue("--complete"), COLOURS[0]));
      const square = stamp(scale, (dx, dy) => clamp01(0.7 * scale + 0.5 - Math.abs(Math.max(Math.abs(dx), Math.abs(dy)) - 3.5 * scale)),
        rgb(style.getPropertyValue("--early"), COLOURS[1]));
      const context = canvas.getContext("2d");
      const pixels = context.createImageData(canvas.width, canvas.height);
      const px = new Float64Array(rows.length), py = new Float64Array(rows.length);
      rows.forEach((r, i) => {
        px[i] = sx(r[FLOPS]); py[i] = sy(r[ACC]);
        if (front.has(r[ID])) return;  // an SVG mark below
        blend(pixels, r[EARLY] ? square : dot, Math.round((px[i] - box.x) * scale), Math.round((py[i] - box.y) * scale));
        if (r[EARLY]) count.early += 1;
        count.points += 1;
      });
      context.putImageData(pixels, 0, 0);
      nearest = (event) => {  // the network whose mark is nearest the pointer, within 6 viewBox units
        const area = canvas.getBoundingClientRect();
        if (!area.width || !area.height) return null;
        const vx = box.x + (event.clientX - area.left) * box.width / area.width, vy = box.y + (event.clientY - area.top) * box.height / area.height;
        let best = -1, reach = 36;
        for (let i = 0; i < px.length; i += 1) {
          const d = (px[i] - vx) ** 2 + (py[i] - vy) ** 2;
          if (d <= reach) { best = i; reach = d; }
        }
        return best < 0 ? null : rows[best];
      };
      if (frontRows.length) {
        const steps = [];
        frontRows.forEach((r, i) => { if (i) steps.push([r[FLOPS], frontRows[i - 1][ACC]]); steps.push([r[FLOPS], r[ACC]]); });
        layer.append(svg("path", { class: "front", d: linePath(steps, sx, sy) }));
      }
      for (const r of frontRows) {
        const cls = `point ${r[EARLY] ? "early" : "complete"} on-front`;
        const mark = r[EARLY]
          ? svg("rect", { class: cls, x: sx(r[FLOPS]) - 3.5, y: sy(r[ACC]) - 3.5, width: 7, height: 7, "data-id": r[ID] })
          : svg("circle", { class: cls, cx: sx(r[FLOPS]), cy: sy(r[ACC]), r: 4, "data-id": r[ID] });
        if (frontRows.length <= 300) mark.append(svg("title", {}, describe(r)));
        layer.append(mark);
        count.points += 1;
        if (r[EARLY]) count.early += 1;
      }
    } });
  plot.dataset.points = count.points;
  plot.dataset.early = count.early;
  const sampled = data.shown < data.plottable ? ` Showing an even sample of ${int(data.shown)} of ${int(data.plottable)} networks (the whole front included).` : "";
  return h("figure", {}, plot,
    legend([["var(--complete)", "trained to the end (filled circle)"], ["", "stopped early by the engine (hollow square)", "border:1.5px solid var(--early)"],
      ["var(--front)", `Pareto front (${front.size}, black outline)`]]),
    h("figcaption", {}, `${int(data.total)} networks; ${int(data.total - data.plottable)} without ${label.replace(" (%)", "")} or MFLOPs (failed or running) are not drawn.${sampled} Hover a mark for the network, click to open it.`));
}

function hypervolumeFigure(data) {
  const rows = data.generations.filter((g) => Number.isFinite(g.hypervolume));
  if (!rows.length) return h("p", { class: "muted" }, "No generation has a network with accuracy and MFLOPs yet.");
  const plot = chart({ id: "hypervolume", label: "hypervolume of the front found so far, per generation", xLabel: "generation",
    yLabel: "hypervolume", integerX: true, x: extent(rows.map((g) => g.generation), 0.05), y: extent([0, ...rows.map((g) => g.hypervolume)], 0.05),
    height: 230, draw: (layer, sx, sy) => {
      layer.append(svg("path", { d: linePath(rows.map((g) => [g.generation, g.hypervolume]), sx, sy), fill: "none", stroke: COLOURS[2], "stroke-width": 2 }));
      for (const g of rows) layer.append(hoverable(svg("circle", { class: "hv-point", cx: sx(g.generation), cy: sy(g.hypervolume), r: 3.5, fill: COLOURS[2], "data-generation": g.generation, "data-value": g.hypervolume }),
        `generation ${g.generation}: hypervolume ${num(g.hypervolume, 1)}, front of ${g.front_size}`, null, rows.length <= 300));
    } });
  return h("figure", {}, plot, h("figcaption", {}, `Front of every network up to each generation, in (100 − ${{ fitness: "fitness seen", acc: "last accuracy", pred: "prediction" }[data.metric]}, MFLOPs), from the reference point (100, ${num(data.reference_point[1], 1)}).`));
}

function savedFigure(data) {
  const rows = data.generations.filter((g) => Number.isFinite(g.epochs_saved));
  if (!rows.length) return h("p", { class: "muted" }, "No epoch budget recorded (the search's configuration names no epochs per network).");
  const lo = Math.min(0, ...rows.map((g) => 100 * g.epochs_saved));
  const xs = rows.map((g) => g.generation);
  const plot = chart({ id: "saved", label: "share of the epoch budget saved, per generation", xLabel: "generation", yLabel: "epochs saved (%)", integerX: true,
    x: [Math.min(...xs) - 0.6, Math.max(...xs) + 0.6], y: [lo, 100], height: 230, draw: (layer, sx, sy) => {
      const width = Math.max(2, Math.min(28, 0.7 * (sx(1) - sx(0))));
      for (const g of rows) {
        const v = 100 * g.epochs_saved;
        layer.append(hoverable(svg("rect", { class: "saved-bar", x: sx(g.generation) - width / 2, y: sy(Math.max(v, 0)), width, height: Math.abs(sy(0) - sy(v)),
          fill: COLOURS[0], "data-generation": g.generation, "data-value": g.epochs_saved }),
          `generation ${g.generation}: ${pct(g.epochs_saved)} saved (${int(g.epochs_trained)} of ${int(g.epochs_budget)} epochs; ${g.early} of ${g.networks} stopped early)`,
          null, rows.length <= 300));
      }
    } });
  return h("figure", {}, plot);
}

function settingsBlock(detail) {
  const items = [];
  const engine = detail.engine_config;
  if (engine) {
    for (const key of ["function", "c_min", "e_pred", "n", "r", "bounds"]) items.push([`engine ${key}`, JSON.stringify(engine[key])]);
    for (const [key, value] of Object.entries(engine.extra || {})) items.push([`engine ${key}`, JSON.stringify(value)]);
  } else items.push(["engine", "none (standalone: every network trains its full budget)"]);
  for (const [key, value] of Object.entries(detail.config || {})) items.push([key, JSON.stringify(value)]);
  items.push(["seed", String(detail.seed ?? "—")], ["code version", detail.code_version || "—"], ["host", detail.host || "—"]);
  return h("dl", { class: "kv", id: "settings" }, items.map(([k, v]) => [h("dt", {}, k), h("dd", { class: "mono" }, v)]));
}

// ---- models table
const COLUMNS = [
  ["id", "id", "id", (m) => cell(m.id, "", "num")],
  ["search", "search", null, (m) => h("td", {}, h("a", { href: `/ui/searches/${m.search_id}` }, m.search))],
  ["beam", "beam", null, (m) => h("td", {}, m.beam || "—")],
  ["generation", "gen", "generation", (m) => cell(m.generation, String(m.generation))],
  ["status", "status", null, (m) => h("td", {}, badge(m.status))],
  ["terminated_early", "early", null, (m) => h("td", {}, m.terminated_early ? `yes, epoch ${num(m.stop_epoch, 1)}` : "no")],
  ["epochs_trained", "epochs", "epochs", (m) => cell(m.epochs_trained, num(m.epochs_trained, 1))],
  ["final_acc", "accuracy %", "acc", (m) => cell(m.final_acc, num(m.final_acc))],
  ["predicted_acc", "predicted %", "pred", (m) => cell(m.predicted_acc, num(m.predicted_acc))],
  ["fitness", "fitness", "fitness", (m) => cell(m.fitness, num(m.fitness))],
  ["flops", "MFLOPs", "flops", (m) => cell(m.flops, num(m.flops))],
  ["n_params", "params", "params", (m) => cell(m.n_params, int(m.n_params))],
];

function currentSort(filter) {
  const term = filter.split("&").find((t) => t.startsWith("sort="));
  if (!term) return ["id", false];
  const value = term.slice(5);
  return [value.replace(/^[-+]/, ""), value.startsWith("-")];
}

function withSort(filter, field, descending) {
  const kept = filter.split("&").filter((t) => t && !t.startsWith("sort="));
  kept.push(`sort=${descending ? "-" : ""}${field}`);
  return kept.join("&");
}

function stripPaging(filter) { return filter.split("&").filter((t) => t && !t.startsWith("cursor=") && !t.startsWith("limit=") && !t.startsWith("format=")).join("&"); }

async function modelsPage() {
  await domReady;  // the form is drawn before the first request
  document.title = "Models · a4nn-commons";
  const params = new URLSearchParams(location.search);
  const state = { filter: params.get("filter") || "", limit: PAGE_SIZES.includes(Number(params.get("limit"))) ? Number(params.get("limit")) : 25,
    cursors: [null], page: 0, selected: new Set() };
  const input = h("input", { type: "text", id: "filter", name: "filter", value: state.filter, spellcheck: "false", autocomplete: "off",
    "aria-describedby": "filter-help", placeholder: "beam=low&acc>99&flops<=500&sort=-acc" });
  const size = h("select", { id: "page-size" }, PAGE_SIZES.map((n) => h("option", { value: n, selected: n === state.limit }, String(n))));
  const message = h("div", { id: "filter-error" });
  const status = h("p", { class: "muted", id: "page-status", "aria-live": "polite" });
  const table = h("table", { id: "models-table" });
  const prev = h("button", { type: "button", id: "prev-page" }, "← Previous page");
  const next = h("button", { type: "button", id: "next-page" }, "Next page →");
  const csv = h("a", { class: "button", id: "download-csv", download: "models.csv" }, "Download CSV");
  const parquet = h("a", { class: "button", id: "download-parquet", download: "models.parquet" }, "Download Parquet");
  const compare = h("button", { type: "button", id: "compare-selected", disabled: true }, "Compare selected (0)");
  const form = h("form", { class: "filter", id: "filter-form", role: "search" },
    h("label", { for: "filter" }, "Filter (the /models grammar)", input), h("label", { for: "page-size" }, "Rows per page", size),
    h("button", { class: "primary", type: "submit" }, "Apply"));
  setMain(h("h1", {}, "Models"), form,
    h("p", { class: "muted", id: "filter-help" }, "Terms joined by &: field op value with op one of = != > >= < <=; field=a,b means any of. ",
      "Fields: acc pred fitness flops params epochs generation id early status search dataset beam nas function. ",
      "Click a column header to sort. Arrow keys move between rows, Enter opens one, Space selects it for comparison."),
    message, h("div", { class: "pager" }, prev, next, status, csv, parquet, compare), table);

  async function load() {
    const base = stripPaging(state.filter);
    const cursor = state.cursors[state.page];
    const query = [base, `limit=${state.limit}`, cursor ? `cursor=${cursor}` : ""].filter(Boolean).join("&");
    let data;
    try {
      data = await api(`/models?${query}`);
    } catch (error) {
      message.replaceChildren(errorBox(error.status === 400 ? `The API refused this filter (400): ${error.message}` : error.message));
      status.textContent = "";
      return;
    }
    message.replaceChildren();
    if (data.next) state.cursors[state.page + 1] = new URL(data.next, location.origin).searchParams.get("cursor");
    prev.disabled = state.page === 0;
    next.disabled = !data.next;
    const start = state.page * state.limit;
    status.textContent = data.count ? `rows ${start + 1}–${start + data.count}${data.next ? "" : " (last page)"}` : "no model matches this filter";
    const exportQuery = base ? `${base}&` : "";
    csv.href = `/export/models?${exportQuery}format=csv`;
    parquet.href = `/export/models?${exportQuery}format=parquet`;
    drawTable(data.items);
  }

  function drawTable(items) {
    const [sortField, descending] = currentSort(state.filter);
    const head = h("tr", {}, h("th", { scope: "col" }, h("span", { class: "muted" }, "select")), COLUMNS.map(([key, title, sortKey]) => {
      const active = sortKey && sortKey === sortField;
      const th = h("th", { scope: "col", class: ["num"].concat(["search", "beam", "status", "terminated_early"].includes(key) ? [] : []).join(" "),
        "aria-sort": active ? (descending ? "descending" : "ascending") : (sortKey ? "none" : null), "data-key": key });
      if (!sortKey) th.append(title);
      else th.append(h("button", { class: "sort", type: "button", "data-sort": sortKey, onclick: () => {
        state.filter = withSort(state.filter, sortKey, active ? !descending : sortKey !== "id");
        input.value = state.filter; restart(); } }, title, active ? (descending ? " ▼" : " ▲") : ""));
      return th;
    }));
    const body = h("tbody", {}, items.map((m) => {
      const box = h("input", { type: "checkbox", "aria-label": `select model ${m.id} for comparison`, checked: state.selected.has(m.id),
        onchange: (e) => { e.target.checked ? state.selected.add(m.id) : state.selected.delete(m.id); updateCompare(); } });
      const row = h("tr", { tabindex: 0, "data-id": m.id, "data-href": `/ui/models/${m.id}` }, h("td", {}, box), COLUMNS.map(([, , , render]) => render(m)));
      row.children[1].append(modelLink(m.id));
      return row;
    }));
    table.replaceChildren(h("caption", { class: "muted", style: "text-align:left" }, "Models matching the filter"), h("thead", {}, head), body);
    keyboardRows(table);
  }

  function updateCompare() {
    compare.textContent = `Compare selected (${state.selected.size})`;
    compare.disabled = state.selected.size < 2 || state.selected.size > 8;
  }

  function restart() {
    state.cursors = [null]; state.page = 0;
    const url = new URLSearchParams(); if (state.filter) url.set("filter", state.filter); if (state.limit !== 25) url.set("limit", state.limit);
    history.replaceState(null, "", `/ui/models${url.toString() ? "?" + url : ""}`);
    return load();
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); state.filter = input.value.trim(); restart(); });
  size.addEventListener("change", () => { state.limit = Number(size.value); restart(); });
  prev.addEventListener("click", () => { if (state.page > 0) { state.page -= 1; load(); } });
  next.addEventListener("click", () => { if (state.cursors[state.page + 1]) { state.page += 1; load(); } });
  compare.addEventListener("click", () => { location.href = `/ui/compare?ids=${[...state.selected].join(",")}`; });
  await load();
}

// Arrow keys move between rows, Home/End jump, Enter follows the row, Space toggles its checkbox.
function keyboardRows(table) {
  table.addEventListener("keydown", (event) => {
    const row = event.target.closest && event.target.closest("tbody tr");
    if (!row || event.target.tagName === "INPUT" && event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const rows = [...table.querySelectorAll("tbody tr")];
    const at = rows.indexOf(row);
    const go = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: rows.length - 1 }[event.key];
    if (go !== undefined) { event.preventDefault(); (rows[Math.max(0, Math.min(rows.length - 1, go))]).focus(); }
    else if (event.key === "Enter" && event.target === row && row.dataset.href) { location.href = row.dataset.href; }
    else if (event.key === " " && event.target === row) {
      const box = row.querySelector("input[type=checkbox]");
      if (box) { event.preventDefault(); box.click(); }
    }
  });
}

// ---- one model
async function modelPage(id) {
  const [model, epochs, predictions, up, down, checkpoints, architecture] = await Promise.all([
    api(`/models/${id}`), api(`/models/${id}/epochs`), api(`/models/${id}/predictions`),
    api(`/models/${id}/lineage?direction=up&hops=1`), api(`/models/${id}/lineage?direction=down&hops=1`), api(`/models/${id}/checkpoints`),
    api(`/models/${id}/architecture`).catch((error) => ({ error: error.message }))]);
  document.title = `Model #${id} · a4nn-commons`;
  const facts = h("div", { class: "facts", id: "model-facts" },
    fact("search", h("a", { href: `/ui/searches/${model.search_id}` }, model.search)), fact("data set", `${model.dataset || "—"} (${model.beam || "—"})`),
    fact("generation / index", `${model.generation} / ${model.index}`), fact("final accuracy %", num(model.final_acc), { "data-key": "final_acc" }),
    fact("predicted %", num(model.predicted_acc), { "data-key": "predicted_acc" }), fact("fitness", num(model.fitness), { "data-key": "fitness" }),
    fact("MFLOPs", num(model.flops), { "data-key": "flops" }), fact("parameters", int(model.n_params)),
    fact("epochs trained", num(model.epochs_trained, 1)), fact("stopped early", model.terminated_early ? `yes, at epoch ${num(model.stop_epoch, 1)}` : "no"),
    fact("wall time", model.wall_seconds ? `${num(model.wall_seconds, 1)} s` : "not recorded"), fact("device", model.device || "—"));
  setMain(
    h("p", { class: "muted" }, h("a", { href: "/ui/searches" }, "Searches"), " / ", h("a", { href: `/ui/searches/${model.search_id}` }, model.search), ` / model #${id}`),
    h("h1", {}, `Model #${id} `, badge(model.status)),
    model.error ? errorBox(`training error: ${model.error}`) : null, facts,
    h("p", {}, h("a", { href: `/ui/compare?ids=${id}` }, "Compare with other models →")),
    h("div", { class: "row" },
      h("div", { class: "col" }, h("h2", {}, "Learning curve and the engine's predictions"), curveFigure(model, epochs, predictions)),
      h("div", { class: "col" }, h("h2", {}, "Architecture"), architectureBlock(model, architecture),
        h("h2", {}, "Genome"), genomeBlock(model), h("h2", {}, "Lineage"), lineageBlock(model, up, down))),
    h("h2", {}, "Checkpoints"), checkpointTable(checkpoints),
    h("h2", {}, "Stored evaluations"), evaluationsTable(model.evaluations));
}

function curveFigure(model, epochs, predictions) {
  const measured = epochs.filter((e) => Number.isFinite(e.val_acc)).map((e) => [e.epoch, e.val_acc]);
  const train = epochs.filter((e) => Number.isFinite(e.train_acc)).map((e) => [e.epoch, e.train_acc]);
  const usable = predictions.filter((p) => Number.isFinite(p.value) && p.value >= 0 && p.value <= 100);
  const dropped = predictions.length - usable.length;
  if (!measured.length && !usable.length) return h("p", { class: "muted" }, "No epoch of this model is recorded yet.");
  const xs = [...measured.map((p) => p[0]), ...usable.map((p) => p.epoch), model.stop_epoch].filter(Number.isFinite);
  const ys = [...measured.map((p) => p[1]), ...train.map((p) => p[1]), ...usable.map((p) => p.value)];
  const yDomain = extent(ys, 0.08, [0, 100.5]);
  const plot = chart({ id: "curve", label: `validation accuracy per epoch of model ${model.id}${usable.length ? " with the engine's predictions" : ""}`,
    xLabel: "epoch", yLabel: "accuracy (%)", x: extent([0, ...xs], 0.03), y: yDomain, draw: (layer, sx, sy) => {
      if (train.length) layer.append(svg("path", { d: linePath(train, sx, sy), fill: "none", stroke: "#8c959f", "stroke-width": 1.5, "stroke-dasharray": "4 3" }));
      if (measured.length) layer.append(svg("path", { class: "measured", d: linePath(measured, sx, sy), fill: "none", stroke: COLOURS[0], "stroke-width": 2 }));
      for (const [e, v] of measured) layer.append(hoverable(svg("circle", { class: "epoch-point", cx: sx(e), cy: sy(v), r: 3, fill: COLOURS[0] }), `epoch ${e}: validation accuracy ${num(v)} %`));
      for (const p of usable) {
        const mark = svg("path", { class: `prediction${p.converged ? " converged" : ""}`, d: `M${sx(p.epoch)},${sy(p.value) - 5}l5,5l-5,5l-5,-5z`,
          fill: p.converged ? COLOURS[1] : "none", stroke: COLOURS[1], "stroke-width": 1.4 });
        layer.append(hoverable(mark, `at epoch ${p.epoch} the engine (${p.function}) predicted ${num(p.value)} % for epoch ${p.target_epoch}${p.converged ? " — converged" : ""}`));
      }
      if (Number.isFinite(model.stop_epoch) && model.terminated_early) {
        layer.append(svg("line", { class: "stop-line", x1: sx(model.stop_epoch), x2: sx(model.stop_epoch), y1: 0, y2: 1000, stroke: COLOURS[3], "stroke-width": 2, "stroke-dasharray": "6 4" }));
        const right = sx(model.stop_epoch) > 420;  // label on the side with room
        layer.append(svg("text", { class: "stop-label", x: sx(model.stop_epoch) + (right ? -5 : 5), y: sy(yDomain[0]) - 8, "text-anchor": right ? "end" : "start" },
          `stopped at epoch ${num(model.stop_epoch, 1)}`));
      }
    } });
  const entries = [[COLOURS[0], "measured validation accuracy"]];
  if (train.length) entries.push(["#8c959f", "training accuracy (dashed)"]);
  if (usable.some((p) => p.converged)) entries.push([COLOURS[1], "prediction, converged (filled diamond)"]);
  if (usable.some((p) => !p.converged)) entries.push(["", "prediction, not converged (hollow diamond)", `border:1.5px solid ${COLOURS[1]}`]);
  if (model.terminated_early) entries.push([COLOURS[3], "stop epoch (dashed)"]);
  const targets = [...new Set(usable.map((p) => p.target_epoch))];
  return h("figure", {}, plot, legend(entries), h("figcaption", {},
    usable.length ? `Each diamond is the accuracy the engine forecast, at that epoch, for epoch ${targets.join(", ")}. ` : "The engine made no prediction for this model. ",
    dropped ? `${dropped} prediction(s) outside 0–100 % or not finite are not drawn (see /models/${model.id}/predictions).` : ""));
}

// The analyzer's graph and layout (/models/{id}/architecture), drawn here as architecture_figure draws it.
function architectureBlock(model, graph) {
  if (!model.genome) return h("p", { class: "muted" }, "This model has no genome to draw.");
  if (graph.error) return h("p", { class: "muted" }, graph.error);
  const link = h("p", { class: "muted" }, h("a", { href: `/models/${model.id}/architecture.svg`, download: `model-${model.id}-architecture.svg` }, "the analyzer's figure (SVG)"));
  if (!graph.nodes.length) return h("div", {}, h("p", {}, "Every phase is empty: the network is input → pooling → classifier."), link);
  const xs = graph.nodes.map((n) => n.x), unit = 46, pad = 26;
  const x0 = Math.min(...xs) - 0.8, width = (Math.max(...xs) + 0.8 - x0) * unit, height = 3.3 * unit;
  const px = (x) => (x - x0) * unit, py = (y) => (1.7 - y) * unit;
  const at = Object.fromEntries(graph.nodes.map((n) => [n.id, n]));
  const marker = `arrow-${model.id}`;
  const root = svg("svg", { id: "architecture", class: "chart architecture", viewBox: `0 0 ${width} ${height + pad}`, role: "img",
    "aria-label": `decoded architecture of genome ${model.genome}: ${graph.nodes.filter((n) => n.role === "conv").length} convolution nodes, ${graph.edges.filter((e) => e.skip).length} skip connections` },
    svg("defs", {}, svg("marker", { id: marker, viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      svg("path", { d: "M0,0L10,5L0,10z", fill: "context-stroke" }))));
  const r = 12;
  for (const edge of graph.edges) {
    const a = at[edge.source], b = at[edge.target];
    const [ax, ay, bx, by] = [px(a.x), py(a.y), px(b.x), py(b.y)];
    const length = Math.hypot(bx - ax, by - ay) || 1;
    const [sx, sy, ex, ey] = [ax + (bx - ax) * r / length, ay + (by - ay) * r / length, bx - (bx - ax) * (r + 2) / length, by - (by - ay) * (r + 2) / length];
    const bend = edge.skip ? -0.5 : (Math.abs(b.x - a.x) > 1.5 ? 0.25 : 0);
    const [mx, my] = [(sx + ex) / 2 - bend * (ey - sy), (sy + ey) / 2 + bend * (ex - sx)];
    root.append(svg("path", { class: edge.skip ? "arch-edge skip" : "arch-edge", d: `M${sx},${sy}Q${mx},${my} ${ex},${ey}`, fill: "none",
      stroke: edge.skip ? "#9467bd" : "#000", "stroke-width": 1.3, "stroke-dasharray": edge.skip ? "5 3" : null, "marker-end": `url(#${marker})` }));
  }
  for (const node of graph.nodes) {
    root.append(svg("circle", { class: `arch-node ${node.role}`, cx: px(node.x), cy: py(node.y), r, fill: graph.colours[node.role] || "#ddd", stroke: "#000" }),
      svg("text", { x: px(node.x), y: py(node.y) + 4, "text-anchor": "middle" }, node.label));
  }
  const phases = [...new Set(graph.nodes.filter((n) => n.role !== "pool").map((n) => n.phase))];
  for (const phase of phases) {
    const members = graph.nodes.filter((n) => n.role !== "pool" && n.phase === phase).map((n) => n.x);
    root.append(svg("text", { x: px((Math.min(...members) + Math.max(...members)) / 2), y: py(1.35), "text-anchor": "middle", "font-weight": "bold" }, `phase ${phase + 1}`));
  }
  return h("figure", {}, root, legend([["", "skip connection (dashed)", "border-top:2px dashed #9467bd;height:0"],
    [graph.colours.conv, "Conv3×3-BN-ReLU node"], [graph.colours.pool, "max pooling"]]), link);
}

function genomeBlock(model) {
  if (!model.genome) return h("p", { class: "muted" }, "—");
  return h("p", {}, h("code", { class: "mono", id: "genome" }, model.genome), " ", h("span", { class: "muted" }, model.genome_encoding || ""));
}

function lineageBlock(model, up, down) {
  const models = (lineage) => Object.fromEntries(lineage.genomes.map((g) => [g.id, g.models]));
  const parents = up.edges.filter((e) => e.child === up.genome_id), children = down.edges.filter((e) => e.parent === down.genome_id);
  const list = (edges, lineage, other, cls) => {
    const owners = models(lineage);
    const items = edges.map((e) => h("li", {}, `${e.operator}: genome ${e[other]} → models `,
      (owners[e[other]] || []).filter((m) => m !== model.id).slice(0, 12).flatMap((m, i) => [i ? ", " : "", h("a", { href: `/ui/models/${m}`, class: cls }, `#${m}`)])));
    return items.length ? h("ul", {}, items) : h("p", { class: "muted" }, "none recorded");
  };
  return h("div", { id: "lineage" }, h("h3", {}, "Parents"), list(parents, up, "parent", "parent-link"),
    h("h3", {}, "Children"), list(children, down, "child", "child-link"));
}

function checkpointTable(rows) {
  if (!rows.length) return h("p", { class: "muted" }, "No checkpoint recorded.");
  return h("table", { id: "checkpoints" }, h("thead", {}, h("tr", {}, ["epoch", "format", "bytes", "sha256", "file"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((c) => h("tr", {}, cell(c.epoch, num(c.epoch, 1)), h("td", {}, c.format || "—"), cell(c.size_bytes, int(c.size_bytes)),
      h("td", { class: "mono sha" }, c.sha256), h("td", {}, h("a", { href: c.download, download: "" }, "download"))))));
}

function evaluationsTable(rows) {
  if (!rows || !rows.length) return h("p", { class: "muted", id: "evaluations" }, "No evaluation of this model on another data set is stored.");
  return h("table", { id: "evaluations" }, h("thead", {}, h("tr", {}, ["id", "epoch", "data set", "metrics", "created"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((e) => h("tr", {}, cell(e.id, String(e.id)), cell(e.epoch, num(e.epoch, 1)),
      h("td", {}, typeof e.dataset === "object" && e.dataset ? [e.dataset.name || "—", e.dataset.split ? ` (${e.dataset.split})` : ""].join("") : (e.dataset || "—")),
      h("td", { class: "mono" }, Object.entries(e.metrics || {}).map(([k, v]) => `${k}: ${typeof v === "number" ? num(v, 4) : JSON.stringify(v)}`).join(" · ")),
      h("td", {}, when(e.created))))));
}

// ---- compare
async function comparePage() {
  await domReady;
  document.title = "Compare · a4nn-commons";
  const raw = new URLSearchParams(location.search).get("ids") || "";
  const input = h("input", { type: "text", id: "compare-ids", value: raw, "aria-describedby": "compare-help", placeholder: "12,40,41" });
  const form = h("form", { class: "filter", onsubmit: (e) => { e.preventDefault(); location.href = `/ui/compare?ids=${encodeURIComponent(input.value.replace(/\s+/g, ""))}`; } },
    h("label", { for: "compare-ids" }, "Model ids (2–8, comma-separated)", input), h("button", { class: "primary", type: "submit" }, "Compare"));
  const head = [h("h1", {}, "Compare models"), form, h("p", { class: "muted", id: "compare-help" }, "Or tick models in the ", h("a", { href: "/ui/models" }, "models table"), " and press Compare selected.")];
  const ids = raw.split(",").map((s) => s.trim()).filter(Boolean);
  if (!ids.length) { setMain(...head); return; }
  if (ids.length < 2 || ids.length > 8 || !ids.every((s) => /^\d+$/.test(s))) {
    setMain(...head, errorBox(`give 2 to 8 model ids as whole numbers; got ${JSON.stringify(raw)}`)); return;
  }
  let models;
  try {
    // every request at once: a model and its curve need not wait for each other
    models = await Promise.all(ids.map((id) => Promise.all([api(`/models/${id}`), api(`/models/${id}/epochs`)])
      .then(([model, curve]) => ({ ...model, curve }))));
  } catch (error) { setMain(...head, errorBox(error.message)); return; }
  const all = models.flatMap((m) => m.curve.filter((e) => Number.isFinite(e.val_acc)));
  const plot = all.length ? chart({ id: "compare-curves", label: `validation accuracy curves of models ${ids.join(", ")}`, xLabel: "epoch", yLabel: "validation accuracy (%)",
    x: extent([0, ...all.map((e) => e.epoch)], 0.03), y: extent(all.map((e) => e.val_acc), 0.08, [0, 100.5]), width: 900, height: 360, draw: (layer, sx, sy) => {
      models.forEach((m, i) => {
        const points = m.curve.filter((e) => Number.isFinite(e.val_acc)).map((e) => [e.epoch, e.val_acc]);
        layer.append(hoverable(svg("path", { class: "compare-curve", "data-id": m.id, d: linePath(points, sx, sy), fill: "none", stroke: COLOURS[i], "stroke-width": 2.2 }),
          `model #${m.id}: final ${num(m.final_acc)} %`));
        if (m.terminated_early && Number.isFinite(m.stop_epoch)) {
          const last = points[points.length - 1];
          if (last) layer.append(svg("rect", { x: sx(last[0]) - 4, y: sy(last[1]) - 4, width: 8, height: 8, fill: "none", stroke: COLOURS[i], "stroke-width": 2 }));
        }
      });
    } }) : h("p", { class: "muted" }, "None of these models has a recorded epoch.");
  const rows = [["search", (m) => m.search], ["beam", (m) => m.beam || "—"], ["generation / index", (m) => `${m.generation} / ${m.index}`],
    ["status", (m) => m.status], ["stopped early", (m) => m.terminated_early ? `yes, epoch ${num(m.stop_epoch, 1)}` : "no"],
    ["epochs trained", (m) => num(m.epochs_trained, 1)], ["final accuracy %", (m) => num(m.final_acc), "final_acc"], ["predicted %", (m) => num(m.predicted_acc), "predicted_acc"],
    ["fitness", (m) => num(m.fitness), "fitness"], ["MFLOPs", (m) => num(m.flops), "flops"], ["parameters", (m) => int(m.n_params)],
    ["genome", (m) => m.genome || "—"], ["engine", (m) => m.function || "standalone"]];
  const table = h("table", { id: "compare-table" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, ""), models.map((m, i) => h("th", { scope: "col" }, h("span", { class: "swatch", style: `background:${COLOURS[i]}` }), modelLink(m.id))))),
    h("tbody", {}, rows.map(([label, value, key]) => h("tr", { "data-key": key || null }, h("th", { scope: "row" }, label),
      models.map((m) => h("td", { class: label === "genome" ? "mono" : null, "data-value": key ? m[key] ?? "" : null }, value(m)))))));
  setMain(...head, h("figure", {}, plot, legend(models.map((m, i) => [COLOURS[i], `model #${m.id}${m.terminated_early ? " (square: stopped early)" : ""}`]))), table);
}

window.addEventListener("popstate", route);
route();
