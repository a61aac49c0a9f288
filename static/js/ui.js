// Small DOM and Plotly helpers shared by the pages. Text from users only ever goes in via
// textContent (never innerHTML), and is entity-escaped before Plotly renders it as a label.

/** el("span", {className: "chip"}, "text", child...) -> element; strings become text nodes. */
export function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export const CHIP_COLORS = 6;   // .chip.p0 .. .chip.p5 in studio.css; PATCH_COLORS mirrors them
export const PATCH_COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#e15759", "#76b7b2"];

const VISIBLE = { "\n": "↵\n", "\t": "⇥", "\r": "⏎" };
/** Text with newlines/tabs made visible (and still breaking lines). */
export function visible(text) {
  return text.replace(/[\n\t\r]/g, (c) => VISIBLE[c]);
}

/** Escape &, <, > so Plotly's pseudo-HTML labels show user text literally. */
export function plotlyText(s) {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * The one Plotly config of every chart: no Plotly logo, no "Share chart" (it uploads the chart,
 * with the user's text, to Plotly's cloud), PNGs named `<filename>.png`. toImage: a function(gd)
 * that saves the PNG itself (a chart drawing more than Plotly knows of, e.g. an overlay) in place
 * of Plotly's camera button.
 */
export function plotConfig(filename, { toImage } = {}) {
  const config = {
    responsive: true, displaylogo: false, showSendToCloud: false,
    modeBarButtonsToRemove: ["sendChartToCloud", "lasso2d", "select2d"],
    toImageButtonOptions: { format: "png", filename },
  };
  if (toImage) {
    config.modeBarButtonsToRemove.push("toImage");
    config.modeBarButtonsToAdd = [{ name: "Download plot as a PNG", icon: Plotly.Icons.camera, click: toImage }];
  }
  return config;
}

export function baseLayout(extra = {}) {
  return {
    margin: { l: 56, r: 16, t: 24, b: 48 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "#fbfbfd",
    font: { family: "system-ui, sans-serif", size: 12 },
    hoverlabel: { align: "left" },
    ...extra,
  };
}

export function fmt(x, digits = 2) {
  return x === null || x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(digits);
}

/** Call fn once, `ms` after the last of a burst of calls (ms: a number, or a function giving it). */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), typeof ms === "function" ? ms() : ms);
  };
}

/** A number input's value, or null when empty. */
export function numberOrNull(input) {
  return input.value.trim() === "" ? null : Number(input.value);
}

/** Run fn at once, then at most once every `ms` while calls keep coming (the last call's
 * arguments always get their run). */
export function throttle(fn, ms) {
  let last = -Infinity;
  let timer = null;
  let latest = [];
  const run = () => {
    timer = null;
    last = performance.now();
    fn(...latest);
  };
  return (...args) => {
    latest = args;
    if (timer) return;
    const wait = last + ms - performance.now();
    if (wait <= 0) run();
    else timer = setTimeout(run, wait);
  };
}

/** Run fn at most once per animation frame, with the arguments of the last call. */
export function perFrame(fn) {
  let frame = null;
  let latest = [];
  return (...args) => {
    latest = args;
    frame ??= requestAnimationFrame(() => {
      frame = null;
      fn(...latest);
    });
  };
}

const encoder = new TextEncoder();
/** UTF-8 bytes of a string. */
export function utf8(text) {
  return encoder.encode(text);
}

/**
 * Show "n / limit bytes" for a text field in `counter` (red when over) and return whether the
 * text fits. Limits are the server's (/api/models), so the page refuses exactly what it would.
 */
export function countBytes(text, limit, counter, what = "bytes") {
  const n = utf8(text).length;
  counter.textContent = limit == null ? `${n} ${what}` : `${n.toLocaleString("en")} / ${limit.toLocaleString("en")} ${what}`;
  const over = limit != null && n > limit;
  counter.classList.toggle("over", over);
  return !over;
}

/** Ctrl+Enter (or Cmd+Enter) anywhere in the page calls run(); Escape calls stop() if given. */
export function shortcuts({ run, stop }) {
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      run();
    } else if (event.key === "Escape" && stop) {
      stop();
    }
  });
}

/** Set a number input's min/max from a server range [lo, hi]. */
export function setRange(input, [lo, hi]) {
  input.min = String(lo);
  input.max = String(hi);
}

/** "Max patch length: Value must be less than or equal to 256." for the first input out of its
 * min/max (the server's ranges, see setRange), or "" when all are in range. */
export function rangeProblem(inputs) {
  const bad = inputs.find((input) => !input.checkValidity());
  return bad ? `${bad.closest("label")?.firstChild.textContent.trim() ?? bad.id}: ${bad.validationMessage}` : "";
}
