// Explore's per-byte detail: for the byte hovered on the chart or the patch a chip holds, each
// byte's character, hex, entropy, and the entropy model's most likely next bytes with their
// probabilities (POST /api/entropy/detail, asked for in blocks and kept while the text stays).
import { fetchJSON } from "./api.js";
import { hex } from "./chars.js";
import { el, fmt, visible } from "./ui.js";

const TOP_K = 5;
const MAX_ROWS = 16;
const WAIT_MS = 120;     // a pointer sweeping over the chart asks only where it rests

const NAMES = { 10: "↵ newline", 9: "⇥ tab", 13: "⏎ return", 32: "␣ space" };

/** A next byte as a reader sees it: 'a', ␣ space, or what part of a character it would start. */
export function nextByteLabel({ byte, token }) {
  if (token !== undefined) return `<${token}>`;
  if (NAMES[byte]) return NAMES[byte];
  if (byte >= 0x20 && byte < 0x7f) return `'${String.fromCharCode(byte)}'`;
  if (byte < 0x80) return `0x${hex(byte)}`;
  if (byte < 0xc0) return `0x${hex(byte)} (inside a character)`;
  const n = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2;
  return byte >= 0xc2 && byte <= 0xf4 ? `0x${hex(byte)} (starts a ${n}-byte character)` : `0x${hex(byte)}`;
}

export class ByteDetail {
  constructor(container, { blockBytes = 64 } = {}) {
    this.container = container;
    this.blockBytes = blockBytes;
    this.reset(null);
  }

  /** A new text: analysis = {text, table, entropies, patchOf(i)} (null: nothing to detail). */
  reset(analysis) {
    this.analysis = analysis;
    this.blocks = new Map();      // block index -> Promise of its positions
    this.shown = null;
    clearTimeout(this.timer);
    this.container.replaceChildren(el("p", { className: "muted", textContent:
      analysis ? "Hover the chart or a patch (or focus a patch with Tab and the arrow keys) to see its bytes." : "" }));
  }

  /** Detail bytes [start, end) under `title` now, and their next bytes once fetched. */
  show(start, end, title) {
    if (!this.analysis) return;
    const key = `${start}:${end}`;
    if (this.shown === key) return;
    this.shown = key;
    this.render(start, end, title, null);
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      let positions;
      try {
        positions = await this.positions(start, Math.min(end, start + MAX_ROWS));
      } catch (err) {
        positions = err;
      }
      if (this.shown === key) this.render(start, end, title, positions);
    }, WAIT_MS);
  }

  async positions(start, end) {
    const { blockBytes: size } = this;
    const wanted = [];
    for (let b = Math.floor(start / size); b * size < end; b++) wanted.push(this.block(b));
    const rows = (await Promise.all(wanted)).flat();
    return new Map(rows.map((row) => [row.i, row]));
  }

  block(b) {
    if (!this.blocks.has(b)) {
      const request = fetchJSON("/api/entropy/detail", { body: {
        text: this.analysis.text, start: b * this.blockBytes, length: this.blockBytes, top_k: TOP_K,
      } }).then((response) => response.positions);
      const { blocks } = this;
      request.catch(() => blocks.delete(b));          // asked again next time
      this.blocks.set(b, request);
    }
    return this.blocks.get(b);
  }

  /** positions: Map i -> row of /api/entropy/detail, null while fetching, or the Error. */
  render(start, end, title, positions) {
    const { table, entropies, patchOf } = this.analysis;
    const rows = [];
    for (let i = start; i < Math.min(end, start + MAX_ROWS); i++) {
      const c = table.charOf[i];
      const [s, e] = table.span(c);
      const part = e - s > 1 ? ` (byte ${i - s + 1} of ${e - s})` : "";
      rows.push(el("tr", { className: "detail-row" },
        el("td", { textContent: String(i) }),
        el("td", { className: "char", textContent: table.texts[c] === " " ? "␣" : visible(table.texts[c]),
          title: table.describe(c) }),
        el("td", { textContent: `${hex(table.bytes[i])}${part}` }),
        el("td", { textContent: fmt(entropies[i], 3) }),
        el("td", { textContent: String(patchOf(i)) }),
        el("td", {}, nextBytes(positions, i))));
    }
    const more = end - start > MAX_ROWS ? el("p", { className: "muted", textContent: `… ${end - start - MAX_ROWS} more bytes` }) : null;
    this.container.replaceChildren(el("h3", { textContent: title }),
      el("table", { className: "table detail" },
        el("thead", {}, el("tr", {}, ...["byte", "char", "hex", "entropy (nats)", "patch", `next byte: top ${TOP_K}`]
          .map((h) => el("th", { textContent: h })))),
        el("tbody", {}, ...rows)), ...(more ? [more] : []));
  }
}

function nextBytes(positions, i) {
  if (positions === null) return el("span", { className: "muted", textContent: "…" });
  if (positions instanceof Error) return el("span", { className: "muted", textContent: `unavailable: ${positions.message}` });
  const row = positions.get(i);
  if (!row) return el("span", { className: "muted", textContent: "–" });
  return el("span", { className: "next" }, ...row.next.map((n) => {
    const node = el("span", { className: "candidate", textContent: `${nextByteLabel(n)} ${(100 * n.p).toFixed(1)}%` });
    node.dataset.next = n.token ?? String(n.byte);
    node.dataset.p = String(n.p);
    return node;
  }));
}
