// Compare: one text under every patching mode (POST /api/compare, one entropy pass), and bytes per
// patch across languages (GET /api/languages, CSV at /api/languages.csv). A long text shows its
// chips a window of bytes at a time, the same window in every mode.
import { clearError, fetchJSON, loadedModel, showError } from "./api.js";
import { CharTable } from "./chars.js";
import { chip, ChipList } from "./chips.js";
import { byteRows, downloadButtons, patchRows, setDownloadable } from "./downloads.js";
import { exampleButtons, EXAMPLES } from "./examples.js";
import { drawFigure } from "./figures_common.js";
import { Permalink, readFragment } from "./permalink.js";
import {
  baseLayout, countBytes, debounce, el, fmt, numberOrNull, rangeProblem, setRange, shortcuts, utf8,
} from "./ui.js";

const $ = (id) => document.getElementById(id);
const text = $("text");
const results = $("results");
const SETTINGS = ["threshold", "max_patch_length", "patch_size"];
const WINDOW_BYTES = 2048;

let info = null;
let comparison = null;     // {text, table, modes: {mode: {patches, patchIds, stats}}}
let offset = 0;            // first byte of the window
let requested = null;      // the request (as JSON) shown or under way
let inflight = null;
let lists = {};            // mode -> ChipList

const permalink = new Permalink({ button: $("copy-link"), status: $("link-status"), onChange: restore });
const saveLink = debounce(() => permalink.save(linkState()), 300);

function linkState() {
  const state = { text: text.value, at: offset || null };
  for (const name of SETTINGS) state[name] = $(name).value;
  return state;
}

/** Whether the text and settings are within the server's limits; says why not beside the text. */
function textFits() {
  const fits = countBytes(text.value, info?.limits.max_text_bytes, $("text-bytes"));
  const problem = rangeProblem(SETTINGS.map($));
  $("text-note").textContent = !text.value ? "Type or paste text, or pick an example."
    : !fits ? "Over the limit (max_text_bytes): shorten the text to compare it." : problem;
  return fits && !problem && text.value !== "";
}

async function compare({ force = false } = {}) {
  saveLink();
  if (!textFits()) {
    inflight?.abort();
    requested = null;
    clearResults();
    if (!text.value) clearError();
    return;
  }
  const body = { text: text.value };
  for (const name of SETTINGS) {
    const value = numberOrNull($(name));
    if (value !== null) body[name] = value;
  }
  const key = JSON.stringify(body);
  if (key === requested && !force) return;
  requested = key;
  inflight?.abort();
  inflight = new AbortController();
  results.classList.add("stale");
  results.setAttribute("aria-busy", "true");
  try {
    const { modes } = await fetchJSON("/api/compare", { body, signal: inflight.signal });
    clearError();
    const bytes = Array.from(utf8(body.text));
    comparison = { text: body.text, table: new CharTable(bytes), modes: {} };
    for (const [mode, { patch_starts: starts, patch_lengths: lengths, stats }] of Object.entries(modes)) {
      const patches = starts.map((start, index) => ({ index, start, length: lengths[index] }));
      const patchIds = new Array(bytes.length);
      patches.forEach((p) => patchIds.fill(p.index, p.start, p.start + p.length));
      comparison.modes[mode] = { patches, patchIds, stats };
    }
    if (offset >= bytes.length) offset = 0;
    document.body.dataset.compared = String(bytes.length);    // read by the browser tests
    results.hidden = false;
    results.classList.remove("stale");
    results.removeAttribute("aria-busy");
    render();
  } catch (err) {
    if (err.name === "AbortError") return;
    requested = null;
    clearResults();
    showError(err);
    if (err.status === 429 && err.retryAfter !== null) setTimeout(compare, err.retryAfter * 1000);
  }
}

function clearResults() {
  comparison = null;
  delete document.body.dataset.compared;
  results.hidden = true;
  results.classList.remove("stale");
  results.removeAttribute("aria-busy");
  $("modes").replaceChildren();
  setDownloadable($("downloads"), false);
}

function render() {
  const n = comparison.table.bytes.length;
  const end = Math.min(n, offset + WINDOW_BYTES);
  $("window").hidden = n <= WINDOW_BYTES;
  $("window-label").textContent = `bytes ${offset}–${end - 1} of ${n}`;
  $("earlier").disabled = offset === 0;
  $("later").disabled = end >= n;
  lists = {};
  $("modes").replaceChildren(...Object.entries(comparison.modes).map(([mode, result]) => modePanel(mode, result, end)));
  setDownloadable($("downloads"), true);
}

function modePanel(mode, { patches, patchIds, stats }, end) {
  const container = el("div", { className: "chips" });
  const list = new ChipList(container, { label: `${mode} patches`, onActive: (j) => linkModes(mode, j) });
  lists[mode] = list;
  if (end > offset) {
    list.replace(patches.slice(patchIds[offset], patchIds[end - 1] + 1).map((p) => chip(comparison.table, p, `${mode} `)));
  }
  const summary = `${stats.patches} patches · ${fmt(stats.mean_patch_bytes)} bytes/patch · `
    + `${stats.global_steps_saved} global steps saved`;
  const panel = el("article", { className: "panel mode" }, el("h2", { textContent: mode }),
    el("p", { className: "muted", textContent: summary }), container);
  panel.dataset.mode = mode;
  return panel;
}

/** A chip of one mode is hovered or focused: every mode marks its chip holding the same first byte. */
function linkModes(mode, j) {
  const start = j === null ? null : comparison.modes[mode].patches[j].start;
  for (const [other, list] of Object.entries(lists)) {
    list.highlight(start === null ? null : comparison.modes[other].patchIds[start]);
  }
}

function moveWindow(by) {
  offset = Math.max(0, offset + by);
  render();
  saveLink();
}

function downloads() {
  downloadButtons($("downloads"), "blt-compare", {
    bytes: () => byteRows(comparison.table, Object.fromEntries(
      Object.entries(comparison.modes).map(([mode, result]) => [`patch_${mode}`, result.patchIds]))),
    patches: () => Object.entries(comparison.modes).flatMap(([mode, result]) =>
      patchRows(comparison.table, result.patches).map((row) => ({ mode, ...row }))),
  }, () => ({ page: "compare", model: info?.model.name, ...linkState(), at: undefined, link: location.href }));
  setDownloadable($("downloads"), false);
}

const COLUMNS = [
  ["language", "language", (v) => v],
  ["script", "script", (v) => v],
  ["corpus", "corpus", (v) => v],
  ["mean_patch_bytes", "bytes / patch", (v) => fmt(v)],
  ["bpb", "bits / byte", (v) => fmt(v, 3)],
  ["bytes", "bytes evaluated", (v) => String(v)],
];

/** The languages chart is the server's figure (/api/figures/languages: one colour per script and the
 * note on out-of-domain text, defined once in app/figures.py) in the page's look; the table beside
 * it lists the same rows (/api/languages). */
async function languages() {
  try {
    const [doc, figure] = await Promise.all([fetchJSON("/api/languages"), drawFigure($("languages-plot"), "languages", {
      filename: "blt-compare-languages",
      layout: baseLayout({ title: { text: "" }, margin: { l: 56, r: 16, t: 56, b: 48 } }),    // the h2 names it
    })]);
    const rows = [...doc.rows].sort((a, b) => b.mean_patch_bytes - a.mean_patch_bytes);
    const { source = [], command = "" } = figure.layout.meta ?? {};
    $("languages-source").textContent = `${source.join(", ")}${command ? ` — made by: ${command}` : ""}`;
    const table = $("languages-table");
    table.tHead.replaceChildren(el("tr", {}, ...COLUMNS.map(([, label]) => el("th", { textContent: label }))));
    table.tBodies[0].replaceChildren(...rows.map((row) => el("tr", {},
      ...COLUMNS.map(([key, , show]) => el("td", { textContent: row[key] === undefined ? "" : show(row[key]) })))));
  } catch (err) {
    showError(err);
  }
}

function restore(state) {
  text.value = state.text ?? "";
  for (const name of SETTINGS) $(name).value = state[name] ?? "";
  offset = Math.max(0, Number.parseInt(state.at ?? "0", 10) || 0);
  requested = null;
  compare();
}

async function init() {
  downloads();
  exampleButtons($("examples"), (example) => {
    text.value = example;
    offset = 0;
    compare();
  });
  const later = debounce(compare, () => Math.min(250, 80 + text.value.length / 100));
  text.addEventListener("input", () => {
    textFits();
    later();
  });
  for (const name of SETTINGS) $(name).addEventListener("input", later);
  $("run").addEventListener("click", () => compare({ force: true }));
  $("earlier").addEventListener("click", () => moveWindow(-WINDOW_BYTES));
  $("later").addEventListener("click", () => moveWindow(WINDOW_BYTES));
  shortcuts({ run: () => compare({ force: true }) });
  try {
    info = await loadedModel();
    const { defaults, limits } = info;
    $("threshold").placeholder = `default ${fmt(defaults.threshold, 3)}`;
    setRange($("threshold"), limits.threshold);
    $("max_patch_length").placeholder = defaults.max_patch_length ? `default ${defaults.max_patch_length}` : "none";
    setRange($("max_patch_length"), limits.max_patch_length);
    $("patch_size").placeholder = `default ${defaults.patch_size}`;
    setRange($("patch_size"), limits.patch_size);
  } catch (err) {
    showError(err);
  }
  const linked = await readFragment().catch(() => null);
  if (linked) restore(linked);
  else if (!text.value) text.value = EXAMPLES.Python;     // not over what the visitor typed meanwhile
  await Promise.all([linked ? null : compare(), languages()]);
}

init();
