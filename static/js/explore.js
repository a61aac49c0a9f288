// Explore: entropies come from POST /api/entropy once per text (only the entropies: the page has
// the text); every control re-patches them in the browser with patching.js (the server's rule),
// at most once per animation frame. Plotly draws the entropy line once per text; the threshold,
// patch starts and coloured dots are a canvas over it (trace_overlay.js), and chips are made only
// for the bytes in the chart's window, so a step of the slider stays cheap at 16 kB.
import { clearError, fetchJSON, loadedModel, showError } from "./api.js";
import { ByteDetail } from "./byte_detail.js";
import { CharTable, hex } from "./chars.js";
import { chip, ChipList, meanOf } from "./chips.js";
import { byteRows, downloadButtons, patchRows, setDownloadable } from "./downloads.js";
import { exampleButtons, EXAMPLES } from "./examples.js";
import { patchBytes } from "./patching.js";
import { Permalink, readFragment } from "./permalink.js";
import { TraceOverlay } from "./trace_overlay.js";
import {
  baseLayout, countBytes, debounce, el, fmt, numberOrNull, perFrame, plotConfig, plotlyText, rangeProblem, setRange,
  shortcuts, throttle, utf8, visible,
} from "./ui.js";

const $ = (id) => document.getElementById(id);
const text = $("text");
const mode = $("mode");
const threshold = $("threshold");
const maxPatchLength = $("max-patch-length");
const patchSize = $("patch-size");
const results = $("results");
const plot = $("entropy-plot");

const WINDOW_BYTES = 1024;      // a longer text opens on this many bytes of chart and chips
const MAX_CHIP_BYTES = 4096;    // chips for at most this many bytes at once (zoomed far out)

let info = null;                // /api/models, once loaded
let analysis = null;            // {text, bytes, table, entropies} of the text shown
let patched = null;             // patchBytes' result under the current options
let view = null;                // [lo, hi): the bytes in the chart's window (long texts)
let linkedView = null;          // a link's window, for the analysis that the link starts
let requested = null;           // the text of the analysis shown or under way
let inflight = null;            // AbortController of the pending /api/entropy request
let retry = null;               // timer of an analysis retried after a 429

const overlay = new TraceOverlay(plot);
const detail = new ByteDetail($("detail"));
const chips = new ChipList($("chips"), { label: "patches", onActive: linkChip });
const permalink = new Permalink({ button: $("copy-link"), status: $("link-status"), onChange: restore });
const saveLink = debounce(() => permalink.save(linkState()), 300);

function options() {
  return {
    mode: mode.value,
    threshold: Number(threshold.value),
    maxPatchLength: numberOrNull(maxPatchLength),
    patchSize: numberOrNull(patchSize),
  };
}

function linkState() {
  return {
    text: text.value, mode: mode.value, threshold: threshold.value, max_patch_length: maxPatchLength.value,
    patch_size: patchSize.value, view: analysis && analysis.bytes.length > WINDOW_BYTES && view ? view.join("-") : null,
  };
}

// ---------------------------------------------------------------------------------- analysis
/** Check the text against the server's limit; say why nothing is shown when it is empty or too long. */
function textFits() {
  const fits = countBytes(text.value, info?.limits.max_text_bytes, $("text-bytes"));
  $("text-note").textContent = !text.value ? "Type or paste text, or pick an example."
    : fits ? rangeProblem([maxPatchLength, patchSize]) : "Over the limit (max_text_bytes): shorten the text to analyse it.";
  return fits && text.value !== "";
}

async function analyze({ force = false } = {}) {
  clearTimeout(retry);
  saveLink();
  const value = text.value;
  if (!textFits()) {
    inflight?.abort();
    requested = null;
    clearResults();
    if (!value) clearError();
    return;
  }
  if (value === requested && !force) return;
  requested = value;
  inflight?.abort();
  inflight = new AbortController();
  results.classList.add("stale");
  results.setAttribute("aria-busy", "true");
  try {
    const { entropies } = await fetchJSON("/api/entropy", {
      body: { text: value, fields: ["entropies"] }, signal: inflight.signal });
    const bytes = Array.from(utf8(value));
    if (entropies.length !== bytes.length) throw new Error(`expected ${bytes.length} entropies, found ${entropies.length}`);
    clearError();
    const n = bytes.length;
    // the window: a link's, else the same as before for the same text, else the text's first kilobyte
    const wanted = linkedView ?? (analysis?.text === value ? view : null);
    linkedView = null;
    view = wanted && wanted[0] >= 0 && wanted[0] < wanted[1] && wanted[1] <= n ? wanted : [0, Math.min(n, WINDOW_BYTES)];
    analysis = { text: value, bytes, table: new CharTable(bytes), entropies };
    detail.reset({ ...analysis, patchOf: (i) => patched.patchIds[i] });
    results.hidden = false;
    results.classList.remove("stale");
    results.removeAttribute("aria-busy");
    drawTrace();
    repatch();
  } catch (err) {
    if (err.name === "AbortError") return;
    requested = null;
    clearResults();      // never leave the previous text's results under an error
    showError(err);
    if (err.status === 429 && err.retryAfter !== null) retry = setTimeout(analyze, err.retryAfter * 1000);
  }
}

function clearResults() {
  analysis = null;
  patched = null;
  results.hidden = true;
  results.classList.remove("stale");
  results.removeAttribute("aria-busy");
  chips.replace([]);
  detail.reset(null);
  overlay.clear();
  for (const id of ["stat-bytes", "stat-patches", "stat-mean", "stat-saved"]) $(id).textContent = "–";
  $("chips-window").textContent = "";
  $("curl").textContent = "";
  setDownloadable($("downloads"), false);
  delete document.body.dataset.patches;
}

// ---------------------------------------------------------------------------------- patching
const repatchSoon = perFrame(repatch);

function repatch() {
  const opts = options();
  $("threshold-value").value = opts.threshold.toFixed(2);
  threshold.disabled = !opts.mode.startsWith("entropy");
  patchSize.disabled = opts.mode !== "static";
  if (info) threshold.min = String(opts.mode === "entropy_monotonic" ? info.limits.threshold[0] : 0);
  saveLink();
  textFits();          // says why when a setting is out of the server's range
  const outOfRange = rangeProblem([maxPatchLength, patchSize]) !== "";
  // stale: not (yet) for these settings, or an analysis of a newer text is under way
  results.classList.toggle("stale", outOfRange || requested !== (analysis?.text ?? null));
  if (!analysis || outOfRange) return;
  try {
    patched = patchBytes(analysis.bytes, analysis.entropies, opts);
  } catch (err) {
    showError(err);
    return;
  }
  clearError();
  patched.starts = patched.patches.map((p) => p.start);
  document.body.dataset.patches = String(patched.patches.length);   // read by the browser tests
  drawStats();
  overlay.set({ patchIds: patched.patchIds, starts: patched.starts, values: shownValues(opts.mode),
    threshold: opts.mode.startsWith("entropy") ? opts.threshold : null });
  drawHistogramSoon(opts.mode);
  drawChips();
  drawCurl(opts);
  setDownloadable($("downloads"), true);
}

function drawStats() {
  const n = analysis.bytes.length;
  const count = patched.patches.length;
  $("stat-bytes").textContent = String(n);
  $("stat-patches").textContent = String(count);
  $("stat-mean").textContent = count ? fmt(n / count) : "–";
  $("stat-saved").textContent = `${n - count} (${n ? fmt((100 * (n - count)) / n, 0) : 0}%)`;
}

// ---------------------------------------------------------------------------------- chart
/** The y values the dots sit on: the entropies, or their rise in entropy_monotonic mode. */
function shownValues(patchMode) {
  if (patchMode !== "entropy_monotonic") return analysis.entropies;
  analysis.rise ??= analysis.entropies.map((h, i) => (i ? h - analysis.entropies[i - 1] : 0));
  return analysis.rise;
}

function drawTrace() {
  const { bytes, table, entropies } = analysis;
  const n = bytes.length;
  const x = bytes.map((_, i) => i);
  const custom = bytes.map((b, i) => `${plotlyText(visible(table.texts[table.charOf[i]]).replace(/\n/g, ""))} (${hex(b)})`);
  const monotonic = mode.value === "entropy_monotonic";
  const traces = [{
    type: "scatter", mode: "lines", name: "entropy", x, y: entropies, customdata: custom,
    line: { color: "#9aa3b5", width: 1 },
    hovertemplate: "byte %{x}: %{customdata}<br>entropy %{y:.3f} nats<extra></extra>",
  }];
  let low = 0;
  if (monotonic) {
    const rise = shownValues("entropy_monotonic");
    low = Math.min(0, ...rise);
    traces.push({ type: "scatter", mode: "lines", name: "rise", x, y: rise, line: { color: "#c9a227", width: 1, dash: "dot" },
      hovertemplate: "rise %{y:.3f}<extra></extra>" });
  }
  const long = n > WINDOW_BYTES;
  Plotly.react(plot, traces, baseLayout({
    showlegend: false, hovermode: "closest", dragmode: long ? "pan" : "zoom",
    xaxis: { title: { text: "byte position" }, zeroline: false,
      range: long ? [view[0] - 0.5, view[1] - 0.5] : [-0.5, n - 0.5],
      rangeslider: long ? { visible: true, thickness: 0.12 } : { visible: false } },
    yaxis: { title: { text: "entropy after the byte (nats)" }, range: [low * 1.05, Math.max(1, ...entropies) * 1.05],
      fixedrange: true },
  }), plotConfig(`blt-explore-entropy-${mode.value}`, { toImage: () => overlay.png(`blt-explore-entropy-${mode.value}`) }));
  overlay.attach();
  if (!plot.dataset.linked) {
    plot.dataset.linked = "1";
    plot.on("plotly_hover", hoverByte);
    plot.on("plotly_unhover", () => linkChip(null));
    plot.on("plotly_relayout", followWindow);
  }
}

/** The chart's window moved (zoom, pan, range slider): the chips follow it. */
function followWindow() {
  if (!analysis || analysis.bytes.length <= WINDOW_BYTES) return;
  const [r0, r1] = plot._fullLayout.xaxis.range;
  const n = analysis.bytes.length;
  const next = [Math.max(0, Math.ceil(r0)), Math.min(n, Math.floor(r1) + 1)];
  if (next[0] >= next[1] || (view && next[0] === view[0] && next[1] === view[1])) return;
  view = next;
  drawChips();
  saveLink();
}

function hoverByte(event) {
  if (!patched) return;
  const i = event.points[0].pointIndex;
  const j = patched.patchIds[i];
  chips.highlight(j, true);
  const p = patched.patches[j];
  overlay.highlight(p.start, p.start + p.length);
  detail.show(i, i + 1, `Byte ${i} · patch ${j}`);
}

/** A chip was hovered or focused (null: left): its bytes light up on the chart and in the detail. */
function linkChip(j) {
  chips.highlight(j);
  if (j === null || !patched) {
    overlay.highlight(null);
    return;
  }
  const p = patched.patches[j];
  overlay.highlight(p.start, p.start + p.length);
  detail.show(p.start, p.start + p.length, `Patch ${j} · ${p.length === 1 ? `byte ${p.start}` : `bytes ${p.start}–${p.start + p.length - 1}`}`);
}

// A Plotly redraw costs ~30 ms even for a few bars: while the slider moves, 5 a second.
const drawHistogramSoon = throttle((patchMode) => patched && drawHistogram(patchMode), 200);

function drawHistogram(patchMode) {
  const counts = new Map();
  for (const p of patched.patches) counts.set(p.length, (counts.get(p.length) ?? 0) + 1);
  const lengths = [...counts.keys()].sort((a, b) => a - b);
  Plotly.react($("histogram"), [{
    type: "bar", x: lengths, y: lengths.map((n) => counts.get(n)), marker: { color: "#4e79a7" },
    hovertemplate: "%{y} patches of %{x} bytes<extra></extra>",
  }], baseLayout({
    xaxis: { title: { text: "bytes per patch" }, dtick: 1 }, yaxis: { title: { text: "patches" } },
  }), plotConfig(`blt-explore-patch-sizes-${patchMode}`));
}

// ---------------------------------------------------------------------------------- chips
function drawChips() {
  const n = analysis.bytes.length;
  const [lo, hi] = n > WINDOW_BYTES ? [view[0], Math.min(view[1], view[0] + MAX_CHIP_BYTES)] : [0, n];
  const { patches, patchIds } = patched;
  const nodes = [];
  for (let j = patchIds[lo]; j <= patchIds[hi - 1]; j++) {
    const { start, length } = patches[j];
    nodes.push(chip(analysis.table, { index: j, start, length, meanEntropy: meanOf(analysis.entropies, start, length) }));
  }
  chips.replace(nodes);
  $("chips").classList.toggle("windowed", n > WINDOW_BYTES);
  $("chips-window").textContent = n > WINDOW_BYTES
    ? `Patches ${patchIds[lo]}–${patchIds[hi - 1]} of ${patches.length}, bytes ${lo}–${hi - 1} of ${n}: the chart's window (drag its range slider to move).`
    : "";
}

function drawCurl(opts) {
  const body = { text: analysis.text, mode: opts.mode };
  if (opts.mode.startsWith("entropy")) body.threshold = opts.threshold;
  if (opts.mode === "static") body.patch_size = opts.patchSize;
  if (opts.maxPatchLength !== null) body.max_patch_length = opts.maxPatchLength;
  const json = JSON.stringify(body).replace(/'/g, "'\\''");
  $("curl").textContent = `curl -s ${location.origin}/api/patch -H 'Content-Type: application/json' -d '${json}'`;
}

// ---------------------------------------------------------------------------------- downloads
function downloads() {
  downloadButtons($("downloads"), "blt-explore", {
    bytes: () => byteRows(analysis.table, {
      entropy: analysis.entropies, patch: patched.patchIds, patch_start: patched.patchIds.map((j) => patched.starts[j]),
    }),
    patches: () => patchRows(analysis.table, patched.patches.map((p, index) => ({ index, ...p })),
      (p) => ({ mean_entropy: meanOf(analysis.entropies, p.start, p.length) })),
  }, () => ({ page: "explore", model: info?.model.name, ...linkState(), view: undefined, link: location.href }));
  setDownloadable($("downloads"), false);
}

// ---------------------------------------------------------------------------------- set-up
/** Put a link's state into the controls, then analyse. */
function restore(state) {
  text.value = state.text ?? "";
  if ([...mode.options].some((o) => o.value === state.mode)) mode.value = state.mode;
  if (state.threshold !== undefined) threshold.value = state.threshold;
  maxPatchLength.value = state.max_patch_length ?? "";
  if (state.patch_size !== undefined) patchSize.value = state.patch_size;
  const parts = (state.view ?? "").split("-").map(Number);
  linkedView = parts.length === 2 && parts.every(Number.isInteger) ? parts : null;
  requested = null;
  repatch();
  analyze();
}

async function init() {
  downloads();
  exampleButtons($("examples"), (example) => {
    text.value = example;
    analyze();
  });
  // wait for a pause in typing, longer for longer texts (each analysis reads the whole text)
  const later = debounce(analyze, () => Math.min(200, 60 + text.value.length / 100));
  text.addEventListener("input", () => {
    textFits();
    later();
  });
  mode.addEventListener("input", () => {
    if (analysis) drawTrace();
    repatchSoon();
  });
  for (const control of [threshold, maxPatchLength, patchSize]) control.addEventListener("input", repatchSoon);
  $("analyze").addEventListener("click", () => analyze({ force: true }));
  shortcuts({ run: () => analyze({ force: true }) });
  try {
    info = await loadedModel();
    mode.replaceChildren(...info.modes.map((m) => el("option", { value: m, textContent: m })));
    mode.value = info.defaults.mode;
    threshold.max = String(info.limits.threshold[1]);
    threshold.value = String(info.defaults.threshold);
    if (info.defaults.max_patch_length) maxPatchLength.value = String(info.defaults.max_patch_length);
    patchSize.value = String(info.defaults.patch_size ?? 4);
    setRange(maxPatchLength, info.limits.max_patch_length);
    setRange(patchSize, info.limits.patch_size);
  } catch (err) {
    showError(err);
  }
  const linked = await readFragment().catch(() => null);
  if (linked) restore(linked);
  else {
    if (!text.value) text.value = EXAMPLES["English prose"];   // not over what the visitor typed meanwhile
    repatch();
    await analyze();
  }
}

init();
