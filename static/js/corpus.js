// Corpus: a whole text file (chosen or pasted) is sent as the raw body of POST
// /api/corpus/stream; progress events move the bar (with an estimate of the time left), the done
// event's report is drawn, and the same report downloads as JSON or as CSV (built here from it).
import { ApiError, clearError, models, showError } from "./api.js";
import { events } from "./sse.js";
import { baseLayout, el, fmt, plotConfig, visible } from "./ui.js";

const $ = (id) => document.getElementById(id);
const form = $("corpus-form");
const file = $("file");
const text = $("text");
let maxBytes = null;
let downloads = [];      // object URLs of the last report, revoked when the next one comes

function body() {
  if (file.files.length) return { payload: file.files[0], size: file.files[0].size, name: file.files[0].name };
  const encoded = new TextEncoder().encode(text.value);
  return { payload: encoded, size: encoded.length, name: "the pasted text" };
}

async function errorOf(response) {
  let error = null;
  try {
    error = await response.json();
  } catch {
    // not JSON: the status line says enough
  }
  return new ApiError(response.status, error?.error_type ?? "http", error?.error ?? `${response.status} ${response.statusText}`);
}

function kB(bytes) {
  return `${(bytes / 1024).toLocaleString("en", { maximumFractionDigits: 1 })} kB`;
}

function showProgress(done, total, started) {
  const elapsed = (performance.now() - started) / 1000;
  const left = done > 0 ? elapsed * (total - done) / done : null;
  $("progress").value = total ? done / total : 0;
  $("progress-text").textContent = `${kB(done)} of ${kB(total)} read`
    + (left !== null && done < total ? ` · about ${Math.ceil(left)} s left` : "");
}

async function analyse(event) {
  event.preventDefault();
  clearError();
  const { payload, size, name } = body();
  if (!size) {
    showError(new Error("choose a file or paste some text first"));
    return;
  }
  if (maxBytes !== null && size > maxBytes) {
    showError(new ApiError(413, "payload_too_large", `${name} is ${size} bytes; the limit is ${maxBytes} (max_corpus_bytes)`));
    return;
  }
  const button = $("analyse");
  button.disabled = true;
  $("progress-box").hidden = false;
  document.body.dataset.corpus = "running";
  const started = performance.now();
  showProgress(0, size, started);
  try {
    const query = new URLSearchParams({ passage_bytes: $("passage-bytes").value || "200" });
    const response = await fetch(`/api/corpus/stream?${query}`, {
      method: "POST", body: payload, headers: { "Content-Type": "text/plain; charset=utf-8", Accept: "text/event-stream" },
    });
    if (!response.ok) throw await errorOf(response);
    for await (const { event: kind, data } of events(response)) {
      if (kind === "progress") showProgress(data.bytes_done, data.bytes_total, started);
      else if (kind === "error") throw new ApiError(null, data.error_type, data.error);
      else if (kind === "done") render(data, name);
    }
  } catch (err) {
    document.body.dataset.corpus = "error";
    showError(err);
  } finally {
    button.disabled = false;
  }
}

function render(report, name) {
  $("results").hidden = false;          // first: Plotly sizes the histogram to its visible box
  $("stat-bytes").textContent = report.bytes.toLocaleString("en");
  $("stat-bpb").textContent = fmt(report.bits_per_byte, 3);
  $("stat-patches").textContent = report.patches.toLocaleString("en");
  $("stat-bpp").textContent = fmt(report.bytes_per_patch);
  unitsTable(report);
  histogram(report);
  passages($("most"), report.passages.most_predictable);
  passages($("least"), report.passages.least_predictable);
  $("passages-note").textContent = `${report.passages.ranked} passages of about ${report.passages.passage_bytes} `
    + `bytes ranked by the BLT's mean bits per byte; the model reads ${report.window_bytes}-byte windows, each `
    + "from a fresh start, so a window's first bytes cost more.";
  offerDownloads(report, name);
  document.body.dataset.corpus = "done";
}

function unitsTable(report) {
  const { mode, threshold } = report.patching;
  const head = ["unit", "count", "bytes per unit", "vs BLT patches"];
  $("units-table").tHead.replaceChildren(el("tr", {}, ...head.map((h) => el("th", { scope: "col", textContent: h }))));
  const row = (label, count, unit, perUnit) => el("tr", {},
    el("th", { scope: "row", textContent: label }),
    el("td", { className: "num", textContent: `${count.toLocaleString("en")} ${unit}` }),
    el("td", { className: "num", textContent: fmt(perUnit) }),
    el("td", { className: "num", textContent: `${fmt(count / report.patches)}×` }));
  const setting = mode.startsWith("entropy") ? `${mode}, θ ${fmt(threshold, 3)} nats` : mode;
  $("units-table").tBodies[0].replaceChildren(
    row(`BLT patches (${setting})`, report.patches, "patches", report.bytes_per_patch),
    ...report.tokenizers.map((t) => row(`${t.name} (${t.label})`, t.tokens, "tokens", t.bytes_per_token)));
}

function histogram(report) {
  const sizes = Object.keys(report.patch_size_histogram).map(Number);
  const counts = sizes.map((s) => report.patch_size_histogram[s]);
  Plotly.react($("histogram"), [{
    type: "bar", x: sizes, y: counts, marker: { color: "#4e79a7" },
    hovertemplate: "%{y} patches of %{x} bytes<extra></extra>",
  }], baseLayout({
    xaxis: { title: { text: "patch size (bytes)" }, dtick: sizes.length > 20 ? undefined : 1 },
    yaxis: { title: { text: "patches" } },
  }), plotConfig("blt-corpus-patch-sizes"));
}

function passages(list, rows) {
  list.replaceChildren(...rows.map((r) => el("li", {},
    el("span", { className: "muted", textContent: `${fmt(r.bits_per_byte, 3)} bits/byte · bytes ${r.start}–${r.start + r.length}` }),
    el("pre", { className: "passage", textContent: visible(r.text) }))));
}

function csvField(value) {
  const s = value === null || value === undefined ? "" : String(value);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The report as one long table: section, item, value, unit, start, length, text. */
export function reportCsv(report) {
  const rows = [["section", "item", "value", "unit", "start", "length", "text"]];
  for (const [key, unit] of [["bytes", "bytes"], ["characters", "characters"], ["bits_per_byte", "bits/byte"],
    ["patches", "patches"], ["bytes_per_patch", "bytes/patch"], ["window_bytes", "bytes"]]) {
    rows.push(["summary", key, report[key], unit]);
  }
  for (const [key, value] of Object.entries(report.patching)) rows.push(["patching", key, value]);
  for (const t of report.tokenizers) {
    rows.push(["tokenizer", t.name, t.tokens, "tokens", "", "", t.label]);
    rows.push(["tokenizer", t.name, t.bytes_per_token, "bytes/token", "", "", t.label]);
  }
  for (const [size, count] of Object.entries(report.patch_size_histogram)) {
    rows.push(["patch_size_histogram", size, count, "patches"]);
  }
  for (const kind of ["most_predictable", "least_predictable"]) {
    report.passages[kind].forEach((r, i) => rows.push([kind, i + 1, r.bits_per_byte, "bits/byte", r.start, r.length, r.text]));
  }
  return rows.map((row) => row.map(csvField).join(",")).join("\r\n") + "\r\n";
}

function offerDownloads(report, name) {
  downloads.forEach((url) => URL.revokeObjectURL(url));
  const json = URL.createObjectURL(new Blob([JSON.stringify(report, null, 1)], { type: "application/json" }));
  const csv = URL.createObjectURL(new Blob([reportCsv(report)], { type: "text/csv" }));
  downloads = [json, csv];
  const stem = name === "the pasted text" ? "corpus" : `corpus-${name.replace(/\.[^.]*$/, "").replace(/[^\w.-]+/g, "_")}`;
  Object.assign($("download-json"), { href: json, download: `${stem}.json` });
  Object.assign($("download-csv"), { href: csv, download: `${stem}.csv` });
}

async function init() {
  form.addEventListener("submit", analyse);
  file.addEventListener("change", () => {
    if (file.files.length) text.value = "";
  });
  text.addEventListener("input", () => {
    file.value = "";
  });
  try {
    const info = await models();
    maxBytes = info.limits.max_corpus_bytes;
    $("limit").textContent = `up to ${kB(maxBytes)}`;
  } catch (err) {
    showError(err);
  }
}

init();
