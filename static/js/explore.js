// Explore: entropies come from POST /api/entropy once per text; every control re-patches them
// in the browser with patching.js (the server's rule), so the threshold slider is instant.
import { clearError, fetchJSON, loadedModel, showError } from "./api.js";
import { exampleButtons, EXAMPLES } from "./examples.js";
import { patchBytes } from "./patching.js";
import {
  baseLayout, debounce, decodeBytes, el, fmt, hex, numberOrNull, PATCH_COLORS, PLOT_CONFIG, plotlyText, renderChips,
} from "./ui.js";

const $ = (id) => document.getElementById(id);
const text = $("text");
const mode = $("mode");
const threshold = $("threshold");
const thresholdValue = $("threshold-value");
const maxPatchLength = $("max-patch-length");
const patchSize = $("patch-size");

let analysis = null;          // the last /api/entropy response
let inflight = null;          // AbortController of the pending /api/entropy request

function options() {
  return {
    mode: mode.value,
    threshold: Number(threshold.value),
    maxPatchLength: numberOrNull(maxPatchLength),
    patchSize: numberOrNull(patchSize),
  };
}

async function analyze() {
  inflight?.abort();
  inflight = new AbortController();
  try {
    analysis = await fetchJSON("/api/entropy", { body: { text: text.value }, signal: inflight.signal });
    repatch();
  } catch (err) {
    if (err.name === "AbortError") return;
    analysis = null;      // so moving a control does not redraw the previous text under the error
    showError(err);
  }
}

function repatch() {
  const opts = options();
  thresholdValue.value = opts.threshold.toFixed(2);
  threshold.disabled = !opts.mode.startsWith("entropy");
  patchSize.disabled = opts.mode !== "static";
  if (!analysis) return;
  const { bytes, entropies } = analysis;
  let patched;
  try {
    patched = patchBytes(bytes, entropies, opts);
  } catch (err) {
    showError(err);
    return;
  }
  clearError();
  const { patches, patchIds } = patched;
  document.body.dataset.patches = String(patches.length);   // read by the browser tests
  drawStats(bytes.length, patches);
  drawEntropy(opts, patches, patchIds);
  drawHistogram(patches);
  renderChips($("chips"), patches.map((p, i) => {
    const slice = bytes.slice(p.start, p.start + p.length);
    return { text: decodeBytes(slice), title: `patch ${i}: bytes ${p.start}–${p.start + p.length - 1} (${p.length})` };
  }));
  drawCurl(opts);
}

function drawStats(n, patches) {
  $("stat-bytes").textContent = String(n);
  $("stat-patches").textContent = String(patches.length);
  $("stat-mean").textContent = patches.length ? fmt(n / patches.length) : "–";
  $("stat-saved").textContent = `${n - patches.length} (${n ? fmt((100 * (n - patches.length)) / n, 0) : 0}%)`;
}

function drawEntropy(opts, patches, patchIds) {
  const { bytes, entropies, chars } = analysis;
  const x = bytes.map((_, i) => i);
  const custom = bytes.map((b, i) => [plotlyText(`“${chars[i]}”`), hex(b), patchIds[i]]);
  const traces = [{
    type: "scatter", mode: "lines+markers", name: "entropy", x, y: entropies, customdata: custom,
    line: { color: "#9aa3b5", width: 1 },
    marker: { size: 6, color: patchIds.map((j) => PATCH_COLORS[j % PATCH_COLORS.length]) },
    hovertemplate: "byte %{x}: %{customdata[0]} (%{customdata[1]})<br>entropy %{y:.3f} nats"
      + "<br>patch %{customdata[2]}<extra></extra>",
  }];
  if (opts.mode === "entropy_monotonic") {
    traces.push({
      type: "scatter", mode: "lines", name: "rise", x, y: entropies.map((h, i) => (i ? h - entropies[i - 1] : null)),
      line: { color: "#c9a227", width: 1, dash: "dot" }, hovertemplate: "rise %{y:.3f}<extra></extra>",
    });
  }
  // Boundaries fall between the last byte of a patch and the first of the next (one trace, gaps by null).
  const top = Math.max(1, ...entropies) * 1.05;
  const bx = [];
  const by = [];
  for (const p of patches.slice(1)) bx.push(p.start - 0.5, p.start - 0.5, null), by.push(0, top, null);
  traces.push({
    type: "scatter", mode: "lines", name: "patch start", x: bx, y: by, hoverinfo: "skip",
    line: { color: "rgba(60,60,80,0.35)", width: 1 },
  });
  const shapes = opts.mode.startsWith("entropy") ? [{
    type: "line", xref: "paper", x0: 0, x1: 1, y0: opts.threshold, y1: opts.threshold,
    line: { color: "#e15759", width: 2, dash: "dash" },
  }] : [];
  Plotly.react($("entropy-plot"), traces, baseLayout({
    shapes, showlegend: true, legend: { orientation: "h", y: 1.12 },
    xaxis: { title: { text: "byte position" }, zeroline: false },
    yaxis: { title: { text: "entropy after the byte (nats)" }, rangemode: "tozero" },
  }), PLOT_CONFIG);
}

function drawHistogram(patches) {
  const counts = new Map();
  for (const p of patches) counts.set(p.length, (counts.get(p.length) ?? 0) + 1);
  const lengths = [...counts.keys()].sort((a, b) => a - b);
  Plotly.react($("histogram"), [{
    type: "bar", x: lengths, y: lengths.map((n) => counts.get(n)), marker: { color: "#4e79a7" },
    hovertemplate: "%{y} patches of %{x} bytes<extra></extra>",
  }], baseLayout({
    xaxis: { title: { text: "bytes per patch" }, dtick: 1 }, yaxis: { title: { text: "patches" } },
  }), PLOT_CONFIG);
}

function drawCurl(opts) {
  const body = { text: analysis.text, mode: opts.mode };
  if (opts.mode.startsWith("entropy")) body.threshold = opts.threshold;
  if (opts.mode === "static") body.patch_size = opts.patchSize;
  if (opts.maxPatchLength !== null) body.max_patch_length = opts.maxPatchLength;
  const json = JSON.stringify(body).replace(/'/g, "'\\''");
  $("curl").textContent = `curl -s ${location.origin}/api/patch -H 'Content-Type: application/json' -d '${json}'`;
}

async function init() {
  exampleButtons($("examples"), (example) => {
    text.value = example;
    analyze();
  });
  text.value = EXAMPLES["English prose"];
  text.addEventListener("input", debounce(analyze, 250));
  for (const control of [mode, threshold, maxPatchLength, patchSize]) control.addEventListener("input", repatch);
  try {
    const info = await loadedModel();
    mode.replaceChildren(...info.modes.map((m) => el("option", { value: m, textContent: m })));
    mode.value = info.defaults.mode;
    threshold.value = String(info.defaults.threshold);
    if (info.defaults.max_patch_length) maxPatchLength.value = String(info.defaults.max_patch_length);
    patchSize.value = String(info.defaults.patch_size ?? 4);
    maxPatchLength.max = String(info.limits.max_patch_length[1]);
    patchSize.max = String(info.limits.patch_size[1]);
  } catch (err) {
    showError(err);
  }
  await analyze();
}

init();
