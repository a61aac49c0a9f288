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

const VISIBLE = { "\n": "↵\n", "\t": "⇥", "\r": "␍" };
/** Text with newlines/tabs made visible (and still breaking lines). */
export function visible(text) {
  return text.replace(/[\n\t\r]/g, (c) => VISIBLE[c]);
}

/** One chip per patch: patches = [{text, title}], index i gets color i mod CHIP_COLORS. */
export function renderChips(container, patches) {
  container.replaceChildren(...patches.map((p, i) =>
    el("span", { className: `chip p${i % CHIP_COLORS}`, textContent: visible(p.text), title: p.title ?? "" })));
}

/** Escape &, <, > so Plotly's pseudo-HTML labels show user text literally. */
export function plotlyText(s) {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

export const PLOT_CONFIG = { responsive: true, displaylogo: false };

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

/** Bytes of a patch decoded for display (a character split across patches shows as U+FFFD). */
const decoder = new TextDecoder("utf-8");
export function decodeBytes(bytes) {
  return decoder.decode(Uint8Array.from(bytes));
}

export function hex(b) {
  return `0x${b.toString(16).padStart(2, "0")}`;
}

/** Call fn once, `ms` after the last of a burst of calls. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** A number input's value, or null when empty. */
export function numberOrNull(input) {
  return input.value.trim() === "" ? null : Number(input.value);
}
