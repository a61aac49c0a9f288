// Figures from GET /api/figures/<name>?format=json, drawn with the page's own plotly.js.
import { fetchJSON } from "./api.js";
import { plotConfig } from "./ui.js";

const NARROW = 600;          // px: below this, side-by-side subplots are stacked
const STACKED_HEIGHT = 330;  // px per stacked subplot

export function figureUrl(name, format) {
  return `/api/figures/${encodeURIComponent(name)}?format=${format}`;
}

/** The figure's layout for a container `width` px wide: on a narrow screen, subplots side by
 * side (make_subplots' columns) are stacked, their titles moved with them, and the legend goes
 * below, so nothing overlaps; returns [layout, height or null]. */
export function fitLayout(layout, width) {
  if (width >= NARROW) return [layout, null];
  // the page names the figure (its long title would be cut); the legend sits at the bottom edge
  const out = { ...layout, title: { text: "" }, margin: { l: 56, r: 12, t: 30, b: 150 },
    legend: { ...layout.legend, orientation: "h", x: 0, xanchor: "left", yref: "container", y: 0, yanchor: "bottom" } };
  const xaxes = Object.keys(layout).filter((k) => /^xaxis\d*$/.test(k)).sort();
  const n = xaxes.length;
  const gap = 0.16;
  const band = (1 - gap * (n - 1)) / n;
  const tops = xaxes.map((_, i) => 1 - i * (band + gap));
  if (n > 1) {
    xaxes.forEach((x, i) => {
      const y = x.replace("x", "y");
      out[x] = { ...layout[x], domain: [0, 1] };
      out[y] = { ...layout[y], domain: [tops[i] - band, tops[i]] };
    });
  }
  // make_subplots' titles: paper-anchored annotations at y = 1, one per column, left to right;
  // any other annotation (a note) is wrapped to the narrow width
  const titles = n > 1 ? (layout.annotations ?? []).filter((a) => a.yref === "paper" && a.y === 1
    && a.yanchor === "bottom").sort((a, b) => a.x - b.x) : [];
  out.annotations = (layout.annotations ?? []).map((a) => {
    const i = titles.indexOf(a);
    return i < 0 ? { ...a, text: rewrap(a.text, 56) } : { ...a, x: 0.5, y: tops[i] };
  });
  if (n < 2) return [out, null];
  out.height = STACKED_HEIGHT * n + 200;
  return [out, out.height];
}

/** Plotly text (lines joined by <br>) wrapped again at `width` characters. */
function rewrap(text, width) {
  const lines = [];
  for (const word of String(text).split(/<br>|\s+/)) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last].length + word.length < width) lines[last] += ` ${word}`;
    else lines.push(word);
  }
  return lines.join("<br>");
}

/** Fetch a figure's Plotly JSON and draw it into `div` (its PNG saved as blt-figure-<name>.png). */
export async function drawFigure(div, name) {
  const figure = await fetchJSON(figureUrl(name, "json"));
  const [layout, height] = fitLayout({ ...figure.layout, autosize: true }, div.clientWidth || window.innerWidth);
  div.style.height = height ? `${height}px` : "";
  await Plotly.react(div, figure.data, layout, plotConfig(`blt-figure-${name}`));
}
