// Figures from GET /api/figures/<name>?format=json, drawn with the page's own plotly.js.
import { fetchJSON } from "./api.js";
import { plotConfig } from "./ui.js";

const NARROW = 600;          // px: below this, side-by-side subplots are stacked
const STACKED_HEIGHT = 330;  // px per stacked subplot
const NOTE_CHAR_PX = 6.5;    // px per character of a note (an 11 px font), about
const NOTE_LINE_PX = 15;     // px per line of a note

export function figureUrl(name, format) {
  return `/api/figures/${encodeURIComponent(name)}?format=${format}`;
}

/** The figure's layout for a container `width` px wide: on a narrow screen, subplots side by
 * side (make_subplots' columns) are stacked, their titles moved with them, the legend goes below,
 * and notes above the plot are wrapped to the width with room made for them, so nothing overlaps
 * or is cut; returns [layout, height or null]. */
export function fitLayout(layout, width) {
  if (width >= NARROW) return [layout, null];
  // the page names the figure (its long title would be cut); the legend sits at the bottom edge
  const out = { ...layout, title: { text: "" }, margin: { l: 56, r: 12, t: 30, b: 150 },
    legend: { ...layout.legend, orientation: "h", x: 0, xanchor: "left", yref: "container", y: 0, yanchor: "bottom" } };
  const xaxes = Object.keys(layout).filter((k) => /^xaxis\d*$/.test(k)).sort();
  const n = Math.max(1, xaxes.length);
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
  // any other annotation (a note) is wrapped to the plot's width
  const titles = n > 1 ? (layout.annotations ?? []).filter((a) => a.yref === "paper" && a.y === 1
    && a.yanchor === "bottom").sort((a, b) => a.x - b.x) : [];
  const columns = Math.max(24, Math.floor((width - out.margin.l - out.margin.r) / NOTE_CHAR_PX));
  out.annotations = (layout.annotations ?? []).map((a) => {
    const i = titles.indexOf(a);
    return i < 0 ? { ...a, text: rewrap(a.text, columns) } : { ...a, x: 0.5, y: tops[i] };
  });
  const noteLines = Math.max(0, ...out.annotations.filter((a) => !titles.includes(a) && a.yref === "paper" && a.y >= 1)
    .map((a) => a.text.split("<br>").length));
  out.margin.t += NOTE_LINE_PX * noteLines;
  out.height = STACKED_HEIGHT * n + 200 + NOTE_LINE_PX * noteLines;
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

/** Fetch a figure's Plotly JSON and draw it into `div`, its layout's top-level keys replaced by
 * `layout`'s (a page's own look); its PNG is saved as `<filename>.png`. Resolves to the figure. */
export async function drawFigure(div, name, { filename = `blt-figure-${name}`, layout: own = {} } = {}) {
  const figure = await fetchJSON(figureUrl(name, "json"));
  const [layout, height] = fitLayout({ ...figure.layout, autosize: true, ...own }, div.clientWidth || window.innerWidth);
  div.style.height = height ? `${height}px` : "";
  await Plotly.react(div, figure.data, layout, plotConfig(filename));
  return figure;
}
