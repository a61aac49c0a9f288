// Compare: one text under every patching mode (POST /api/compare, one entropy pass), and bytes per
// patch across languages (GET /api/languages, CSV at /api/languages.csv).
import { clearError, fetchJSON, loadedModel, showError } from "./api.js";
import { exampleButtons, EXAMPLES } from "./examples.js";
import { baseLayout, debounce, decodeBytes, el, fmt, numberOrNull, PLOT_CONFIG, plotlyText, renderChips } from "./ui.js";

const $ = (id) => document.getElementById(id);
const text = $("text");
let inflight = null;

async function compare() {
  inflight?.abort();
  inflight = new AbortController();
  const body = { text: text.value };
  for (const name of ["threshold", "max_patch_length", "patch_size"]) {
    const value = numberOrNull($(name));
    if (value !== null) body[name] = value;
  }
  try {
    const { text: compared, modes } = await fetchJSON("/api/compare", { body, signal: inflight.signal });
    clearError();
    const bytes = [...new TextEncoder().encode(compared)];
    $("modes").replaceChildren(...Object.entries(modes).map(([mode, result]) => modePanel(mode, result, bytes)));
  } catch (err) {
    if (err.name !== "AbortError") showError(err);
  }
}

function modePanel(mode, { patch_starts: starts, patch_lengths: lengths, stats }, bytes) {
  const chips = el("div", { className: "chips" });
  renderChips(chips, starts.map((s, i) => ({
    text: decodeBytes(bytes.slice(s, s + lengths[i])), title: `patch ${i}: ${lengths[i]} bytes`,
  })));
  const summary = `${stats.patches} patches · ${fmt(stats.mean_patch_bytes)} bytes/patch · `
    + `${stats.global_steps_saved} global steps saved`;
  return el("article", { className: "panel mode" }, el("h3", { textContent: mode }),
    el("p", { className: "muted", textContent: summary }), chips);
}

const COLUMNS = [
  ["language", "language", (v) => v],
  ["script", "script", (v) => v],
  ["corpus", "corpus", (v) => v],
  ["mean_patch_bytes", "bytes / patch", (v) => fmt(v)],
  ["bpb", "bits / byte", (v) => fmt(v, 3)],
  ["bytes", "bytes evaluated", (v) => String(v)],
];

async function languages() {
  try {
    const doc = await fetchJSON("/api/languages");
    const rows = [...(Array.isArray(doc) ? doc : doc.rows)].sort((a, b) => b.mean_patch_bytes - a.mean_patch_bytes);
    if (!Array.isArray(doc)) {
      $("languages-source").textContent = `${doc.source ?? ""}${doc.command ? ` — made by: ${doc.command}` : ""}`;
    }
    const scripts = [...new Set(rows.map((r) => r.script))];
    Plotly.react($("languages-plot"), scripts.map((script) => {
      const mine = rows.filter((r) => r.script === script);
      return {
        type: "bar", name: plotlyText(script), x: mine.map((r) => plotlyText(r.language)), y: mine.map((r) => r.mean_patch_bytes),
        customdata: mine.map((r) => [r.bpb, r.bytes, plotlyText(r.corpus)]),
        hovertemplate: "%{x}: %{y:.2f} bytes/patch<br>%{customdata[0]:.3f} bits/byte"
          + "<br>%{customdata[1]} bytes of %{customdata[2]}<extra></extra>",
      };
    }), baseLayout({
      xaxis: { categoryorder: "array", categoryarray: rows.map((r) => plotlyText(r.language)) },
      yaxis: { title: { text: "mean bytes per patch" } }, legend: { title: { text: "script" } },
    }), PLOT_CONFIG);
    const table = $("languages-table");
    table.tHead.replaceChildren(el("tr", {}, ...COLUMNS.map(([, label]) => el("th", { textContent: label }))));
    table.tBodies[0].replaceChildren(...rows.map((row) => el("tr", {},
      ...COLUMNS.map(([key, , show]) => el("td", { textContent: row[key] === undefined ? "" : show(row[key]) })))));
  } catch (err) {
    showError(err);
  }
}

async function init() {
  exampleButtons($("examples"), (example) => {
    text.value = example;
    compare();
  });
  text.value = EXAMPLES.Code;
  const later = debounce(compare, 250);
  text.addEventListener("input", later);
  for (const name of ["threshold", "max_patch_length", "patch_size"]) $(name).addEventListener("input", later);
  try {
    const { defaults } = await loadedModel();
    $("threshold").placeholder = `default ${fmt(defaults.threshold, 3)}`;
    $("max_patch_length").placeholder = defaults.max_patch_length ? `default ${defaults.max_patch_length}` : "none";
    $("patch_size").placeholder = `default ${defaults.patch_size}`;
  } catch (err) {
    showError(err);
  }
  await Promise.all([compare(), languages()]);
}

init();
