// Scaling: the scaling, threshold-sweep and paper-reference figures that /api/figures lists.
import { fetchJSON, showError } from "./api.js";
import { drawFigure, figureUrl } from "./figures_common.js";
import { el } from "./ui.js";

const WANTED = ["scaling", "threshold_sweep", "paper_reference"];
const container = document.getElementById("scaling-figures");

function sourceLine(figure) {
  const line = el("p", { className: "muted" }, "Data: ");
  figure.source_files.forEach((file, i) => {
    if (i) line.append(", ");
    line.append(el("a", { href: `/data/${encodeURIComponent(file)}`, textContent: file }));
  });
  line.append(" · ", el("a", { href: figureUrl(figure.name, "json"), textContent: "figure JSON" }));
  return line;
}

async function init() {
  try {
    const figures = (await fetchJSON("/api/figures")).filter((f) => WANTED.includes(f.name))
      .sort((a, b) => WANTED.indexOf(a.name) - WANTED.indexOf(b.name));
    if (!figures.length) {
      container.append(el("p", { className: "panel", textContent:
        "No scaling or threshold-sweep data in plot_data/ yet: these figures appear once the experiments have run." }));
      return;
    }
    const sections = figures.map((figure) => {
      const div = el("div", { className: "plot tall" });
      container.append(el("section", { className: "panel" }, el("h2", { textContent: figure.title }), sourceLine(figure), div));
      return drawFigure(div, figure.name);
    });
    await Promise.all(sections);
  } catch (err) {
    showError(err);
  }
}

init();
