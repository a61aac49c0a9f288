// Figures from GET /api/figures/<name>?format=json, drawn with the page's own plotly.js.
import { fetchJSON } from "./api.js";
import { plotConfig } from "./ui.js";

export function figureUrl(name, format) {
  return `/api/figures/${encodeURIComponent(name)}?format=${format}`;
}

/** Fetch a figure's Plotly JSON and draw it into `div` (its PNG saved as blt-figure-<name>.png). */
export async function drawFigure(div, name) {
  const figure = await fetchJSON(figureUrl(name, "json"));
  await Plotly.react(div, figure.data, { ...figure.layout, autosize: true }, plotConfig(`blt-figure-${name}`));
}
