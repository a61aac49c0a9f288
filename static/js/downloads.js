// Downloads of what a page shows: per-byte rows and patch rows, as CSV and JSON, made in the
// browser from the data the page already holds (the numbers are the API's, unrounded).
import { hexBytes } from "./chars.js";
import { el } from "./ui.js";

function csvField(value) {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Rows (objects) as CSV with a header line (RFC 4180: CRLF, fields quoted where needed). */
export function toCsv(rows) {
  if (!rows.length) return "";
  const columns = Object.keys(rows[0]);
  return [columns, ...rows.map((row) => columns.map((c) => row[c]))].map((r) => r.map(csvField).join(",")).join("\r\n") + "\r\n";
}

export function saveFile(filename, content, type) {
  const url = URL.createObjectURL(new Blob([content], { type }));
  const link = el("a", { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/**
 * One row per byte: i, byte, hex, char (the whole character the byte belongs to), char_index,
 * then `columns` (name -> per-byte array, e.g. entropy, patch, patch_start).
 */
export function byteRows(table, columns) {
  const { bytes } = table;
  const rows = new Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const c = table.charOf[i];
    const row = { i, byte: bytes[i], hex: hexBytes(bytes, i, i + 1), char: table.texts[c], char_index: c };
    for (const [name, values] of Object.entries(columns)) row[name] = values[i];
    rows[i] = row;
  }
  return rows;
}

/**
 * One row per patch: patch, start, length, hex, text (the characters that begin in the patch, so
 * the texts of all patches join to the text), shown (the chip's text: split characters whole,
 * bracketed), then `extra(patch)`'s fields.
 */
export function patchRows(table, patches, extra = () => ({})) {
  return patches.map((p) => ({
    patch: p.index, start: p.start, length: p.length, hex: hexBytes(table.bytes, p.start, p.start + p.length),
    text: table.textFrom(p.start, p.start + p.length), shown: table.label(p.start, p.start + p.length), ...extra(p),
  }));
}

/**
 * Fill `container` with download buttons: for each of `kinds` ({bytes: () => rows, patches: () =>
 * rows}), CSV and JSON, saved as `<name>-<kind>.csv|json`; the JSON is {about, rows}, about()
 * telling the text's settings.
 */
export function downloadButtons(container, name, kinds, about) {
  container.replaceChildren(el("span", { className: "muted", textContent: "Download: " }));
  for (const [kind, rows] of Object.entries(kinds)) {
    for (const format of ["csv", "json"]) {
      const button = el("button", { type: "button", className: "link", textContent: `${kind} ${format.toUpperCase()}` });
      button.dataset.download = `${kind}.${format}`;
      button.addEventListener("click", () => {
        const data = rows();
        if (format === "csv") saveFile(`${name}-${kind}.csv`, toCsv(data), "text/csv");
        else saveFile(`${name}-${kind}.json`, `${JSON.stringify({ about: about(), rows: data }, null, 1)}\n`, "application/json");
      });
      container.append(button, " ");
    }
  }
}

/** Enable or disable every download button of `container` (nothing to download yet). */
export function setDownloadable(container, enabled) {
  for (const button of container.querySelectorAll("button")) button.disabled = !enabled;
}
