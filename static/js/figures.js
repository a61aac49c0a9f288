// Figures: every figure (/api/figures) and file (/api/visualizations), to view or download.
import { fetchJSON, showError } from "./api.js";
import { drawFigure, figureUrl } from "./figures_common.js";
import { el } from "./ui.js";

const $ = (id) => document.getElementById(id);

function links(...items) {
  const cell = el("td");
  items.forEach((a, i) => {
    if (i) cell.append(" · ");
    cell.append(a);
  });
  return cell;
}

function figureRow(figure) {
  const preview = el("button", { type: "button", className: "link", textContent: "here" });
  preview.addEventListener("click", () => {
    $("figure-preview").scrollIntoView({ behavior: "smooth" });
    drawFigure($("figure-preview"), figure.name).catch(showError);
  });
  const views = [preview];
  if (figure.formats.includes("html")) {
    views.push(el("a", { href: figureUrl(figure.name, "html"), target: "_blank", rel: "noopener", textContent: "HTML" }));
  }
  // The API's HTML loads this server's plotly.js, so it is viewed, not saved; the offline HTML
  // files are the export's (listed under Files).
  const downloads = figure.formats.filter((format) => format !== "html").map((format) =>
    el("a", { href: figureUrl(figure.name, format), download: `${figure.name}.${format}`, textContent: format }));
  const data = figure.source_files.map((file) => el("a", { href: `/data/${encodeURIComponent(file)}`, textContent: file }));
  return el("tr", {}, el("td", { textContent: figure.title }), links(...data), links(...views), links(...downloads));
}

function size(bytes) {
  return bytes < 1024 ? `${bytes} B` : bytes < 1 << 20 ? `${(bytes / 1024).toFixed(1)} kB` : `${(bytes / (1 << 20)).toFixed(1)} MB`;
}

function fileRow(file) {
  return el("tr", {}, el("td", { textContent: file.folder ? `${file.folder}/${file.name}` : file.name }),
    el("td", { textContent: file.kind }),
    el("td", { textContent: size(file.bytes) }),
    links(el("a", { href: file.url, target: "_blank", rel: "noopener", textContent: "view" }),
      el("a", { href: file.url, download: file.name.split("/").pop(), textContent: "download" })));
}

async function init() {
  try {
    const [figures, { files }] = await Promise.all([fetchJSON("/api/figures"), fetchJSON("/api/visualizations")]);
    $("figure-table").tBodies[0].replaceChildren(...figures.map(figureRow));
    $("file-table").tBodies[0].replaceChildren(...files.map(fileRow));
    if (figures.length) await drawFigure($("figure-preview"), figures[0].name);
  } catch (err) {
    showError(err);
  }
}

init();
