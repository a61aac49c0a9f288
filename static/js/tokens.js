// Beside real tokenizers: the text's tokens under GPT-2, GPT-4 and GPT-4o's BPE vocabularies
// (POST /api/tokenize, computed on the server from tiktoken's own files), next to the BLT's
// patches of the same text. A self-contained panel: any element
//   <section data-token-panel data-source="text" data-settings="mode threshold"></section>
// follows the textarea whose id is data-source (typing, examples, permalinks: the text is
// re-read whenever it changes) and the page's patching inputs named in data-settings (ids; the
// API field is the id with "-" as "_"; empty or disabled ones are left to the model's default),
// so its BLT row counts the patches the page shows; renderTokenPanel does it once.
import { fetchJSON } from "./api.js";
import { CHIP_COLORS, el, fmt, visible } from "./ui.js";

const DEFAULT_SHOWN = "cl100k_base";
const TYPING_PAUSE_MS = 1000;

/** The panel's summary table: one row for the BLT's patches, one per vocabulary. */
function summaryTable(result, patching) {
  const { stats, mode, threshold } = result.blt;
  const setting = mode.startsWith("entropy")
    ? `${mode}, θ ${fmt(threshold, 3)} nats${patching.threshold === undefined ? ", model default" : ""}` : mode;
  const row = (name, note, count, unit, perUnit, ratio) => el("tr", {},
    el("th", { scope: "row", textContent: name }, el("small", { className: "muted", textContent: ` ${note}` })),
    el("td", { className: "num", textContent: `${count} ${unit}` }),
    el("td", { className: "num", textContent: fmt(perUnit) }),
    el("td", { className: "num", textContent: ratio }));
  const head = el("thead", {}, el("tr", {}, ...["unit", "count", "bytes per unit", "vs BLT patches"].map(
    (label) => el("th", { scope: "col", textContent: label }))));
  const rows = [row("BLT", `(${setting})`, stats.patches, "patches", stats.mean_patch_bytes, "1.00×")];
  for (const t of result.tokenizers) {
    rows.push(row(t.name, `(${t.label})`, t.tokens, "tokens", t.bytes_per_token,
      stats.patches ? `${fmt(t.tokens / stats.patches)}×` : "–"));
  }
  return el("table", { className: "table tokens-table" }, head, el("tbody", {}, ...rows));
}

/** One chip per span of whole characters; a span of several tokens (a character split by BPE)
 * is outlined and says so in its title. */
function tokenChips(tokenizer) {
  let k = 0;   // index of the span's first token
  const chips = tokenizer.spans.map((span, i) => {
    const ids = tokenizer.token_ids.slice(k, k + span.tokens);
    const byteSpans = tokenizer.token_starts.slice(k, k + span.tokens)
      .map((s, j) => `${s}–${s + tokenizer.token_lengths[k + j]}`);
    k += span.tokens;
    const title = span.tokens === 1
      ? `token ${ids[0]} · bytes ${byteSpans[0]}`
      : `${span.tokens} tokens (${ids.join(", ")}) split this character: bytes ${byteSpans.join(", ")}`;
    return el("span", {
      className: `chip p${i % CHIP_COLORS}${span.tokens > 1 ? " multi" : ""}`, textContent: visible(span.text), title,
    });
  });
  return el("div", { className: "chips", ariaLabel: `${tokenizer.name} tokens` }, ...chips);
}

/** Render the tokens of `text` into `container` (replacing what it held); the BLT's patches
 * under `patching` (API fields: mode, threshold, max_patch_length, patch_size; absent ones are
 * the model's defaults). */
export async function renderTokenPanel(container, text, { shown = DEFAULT_SHOWN, signal, patching = {} } = {}) {
  if (!text) {
    container.replaceChildren();
    return null;
  }
  const result = await fetchJSON("/api/tokenize", { body: { text, ...patching }, signal });
  const picker = el("select", { id: `${container.id}-pick`, ariaLabel: "tokenizer whose tokens are shown" },
    ...result.tokenizers.map((t) => el("option", { value: t.name, textContent: `${t.name} (${t.label})`,
      selected: t.name === shown })));
  const chipsBox = el("div", { className: "token-chips" });
  const showChips = () => {
    chipsBox.replaceChildren(tokenChips(result.tokenizers.find((t) => t.name === picker.value)));
  };
  picker.addEventListener("change", showChips);
  showChips();
  container.replaceChildren(
    el("h2", { textContent: "Beside real tokenizers" }),
    el("p", { className: "muted", textContent: "The same text under BPE vocabularies of widely used models "
      + "(tiktoken's files, encoded on the server), beside the BLT's patches. A chip is one token; where BPE "
      + "splits a character between tokens, they share one outlined chip so characters stay whole." }),
    el("div", { className: "table-scroll", tabIndex: 0, role: "region", ariaLabel: "tokens and patches table" },
      summaryTable(result, patching)),
    el("label", { className: "pick" }, "Show the tokens of ", picker),
    chipsBox,
    el("p", { className: "muted" }, "JSON twin: ", el("a", { href: "/api#post-api-tokenize", textContent:
      "POST /api/tokenize" })));
  container.renderedText = text;     // which text the panel shows (read by the browser tests)
  container.dataset.tokens = JSON.stringify(Object.fromEntries(result.tokenizers.map((t) => [t.name, t.tokens])));
  return result;
}

/** The patching fields of the page's inputs: {field: value} of those set and enabled. */
function pagePatching(inputs) {
  const out = {};
  for (const input of inputs) {
    if (input.disabled || input.value === "") continue;
    out[input.id.replaceAll("-", "_")] = input.id === "mode" ? input.value : Number(input.value);
  }
  return out;
}

/** Keep a panel in step with its source textarea and the page's patching inputs. */
function follow(container) {
  const source = document.getElementById(container.dataset.source);
  if (!source) return;
  const inputs = (container.dataset.settings ?? "").split(/\s+/).filter(Boolean)
    .map((id) => document.getElementById(id)).filter(Boolean);
  let rendered = null;
  let inflight = null;
  let timer = null;
  const update = async () => {
    const patching = pagePatching(inputs);
    const key = JSON.stringify([source.value, patching]);
    if (key === rendered) return;
    rendered = key;
    inflight?.abort();
    const mine = new AbortController();
    inflight = mine;
    container.setAttribute("aria-busy", "true");
    try {
      await renderTokenPanel(container, source.value, { shown: container.querySelector("select")?.value
        ?? DEFAULT_SHOWN, signal: mine.signal, patching });
      delete container.dataset.error;
    } catch (err) {
      if (err.name === "AbortError") return;
      container.dataset.error = err.message;          // the page's own banner already reports bad text
      container.replaceChildren(el("h2", { textContent: "Beside real tokenizers" }),
        el("p", { className: "muted", textContent: `No tokens: ${err.message}` }));
    } finally {
      if (inflight === mine) container.removeAttribute("aria-busy");
    }
  };
  // after typing stops for TYPING_PAUSE_MS: the page's own analysis of the text goes first, and
  // a burst of keystrokes costs one request
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      update();
    }, TYPING_PAUSE_MS);
  };
  for (const input of [source, ...inputs]) input.addEventListener("input", later);
  // examples and permalinks set the text and settings without an input event: look again now and then
  setInterval(() => {
    if (timer === null) update();
  }, TYPING_PAUSE_MS);
  update();
}

document.querySelectorAll("[data-token-panel]").forEach(follow);
