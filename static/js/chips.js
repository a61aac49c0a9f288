// Patch chips, the same on every page: one chip per patch, its characters shown whole (chars.js),
// a label that says what it holds ("patch 3 · bytes 12–17 · “hello” · mean entropy 1.20 nats"),
// keyboard focus (one chip in the tab order, arrow keys move between chips: a roving tabindex),
// and hover/focus reported to the page, which links the chip to its bytes on the chart.
import { CHIP_COLORS, el, fmt, visible } from "./ui.js";

const LABEL_CHARS = 40;

/** "patch 3 · bytes 12–17 · “hello” · mean entropy 1.20 nats" (bytes inclusive). */
export function chipLabel(table, { index, start, length, meanEntropy }, prefix = "") {
  let text = table.label(start, start + length);
  if (text.length > LABEL_CHARS) text = `${text.slice(0, LABEL_CHARS)}…`;
  const parts = [`${prefix}patch ${index}`, length === 1 ? `byte ${start}` : `bytes ${start}–${start + length - 1}`,
    `“${text}”`];
  if (meanEntropy !== undefined) parts.push(`mean entropy ${fmt(meanEntropy)} nats`);
  return parts.join(" · ");
}

/** One chip element for patch {index, start, length[, meanEntropy]} of the table's bytes. */
export function chip(table, patch, prefix = "") {
  const node = el("span", {
    className: `chip p${patch.index % CHIP_COLORS}`, tabIndex: -1, title: chipLabel(table, patch, prefix),
  });
  node.setAttribute("role", "option");
  node.setAttribute("aria-label", node.title);
  node.dataset.patch = String(patch.index);
  for (const run of table.runs(patch.start, patch.start + patch.length)) {
    if (run.partial || run.invalid) {
      node.append(el("span", { className: run.invalid ? "invalid" : "partial", textContent: run.text, title: run.title }));
    } else {
      node.append(visible(run.text));
    }
  }
  return node;
}

/** Mean of values[start, start + length). */
export function meanOf(values, start, length) {
  let sum = 0;
  for (let i = start; i < start + length; i++) sum += values[i];
  return sum / length;
}

/**
 * A container of chips as one keyboard stop: Tab reaches the current chip, arrows/Home/End move
 * between chips, and onActive(patchIndex | null) hears which chip the pointer or focus is on.
 */
export class ChipList {
  constructor(container, { label, onActive = () => {} }) {
    this.container = container;
    this.onActive = onActive;
    container.setAttribute("role", "listbox");
    container.setAttribute("aria-label", label);
    container.addEventListener("keydown", (event) => this.key(event));
    container.addEventListener("focusin", (event) => this.activate(event.target.closest(".chip")));
    container.addEventListener("mouseover", (event) => this.activate(event.target.closest(".chip")));
    container.addEventListener("mouseleave", () => this.activate(null));
    container.addEventListener("focusout", (event) => {
      if (!container.contains(event.relatedTarget)) this.activate(null);
    });
  }

  /** Replace the chips; the chip in the tab order (and focus, if a chip had it) stays on the same patch. */
  replace(nodes) {
    const focused = this.container.contains(document.activeElement) ? document.activeElement.dataset.patch : null;
    const current = this.container.querySelector('.chip[tabindex="0"]')?.dataset.patch;
    this.container.replaceChildren(...nodes);
    this.settle(focused ?? current, focused !== null);
  }

  /** Replace the chips of patches >= `patch` by `nodes` (a growing generation's last patches). */
  replaceFrom(patch, nodes) {
    const focused = this.container.contains(document.activeElement) ? document.activeElement.dataset.patch : null;
    const current = this.container.querySelector('.chip[tabindex="0"]')?.dataset.patch;
    for (let node = this.container.lastElementChild; node && Number(node.dataset.patch) >= patch;) {
      const before = node.previousElementSibling;
      node.remove();
      node = before;
    }
    this.container.append(...nodes);
    this.settle(focused ?? current, focused !== null);
  }

  settle(patch, refocus) {
    const chips = this.container.querySelectorAll(".chip");
    if (!chips.length) return;
    const target = (patch != null && this.chipOf(Number(patch))) || chips[0];
    target.tabIndex = 0;
    if (refocus) target.focus({ preventScroll: true });
  }

  chipOf(patch) {
    return this.container.querySelector(`.chip[data-patch="${patch}"]`);
  }

  /** Mark the chip of `patch` as linked (null: none), e.g. while its bytes are hovered on the chart. */
  highlight(patch, scroll = false) {
    this.container.querySelector(".chip.linked")?.classList.remove("linked");
    const node = patch == null ? null : this.chipOf(patch);
    if (!node) return;
    node.classList.add("linked");
    const box = this.container;      // scrolled within its own box only, never the page
    if (scroll && box.scrollHeight > box.clientHeight
        && (node.offsetTop < box.scrollTop || node.offsetTop + node.offsetHeight > box.scrollTop + box.clientHeight)) {
      box.scrollTop = node.offsetTop - box.clientHeight / 2;
    }
  }

  activate(node) {
    const patch = node ? Number(node.dataset.patch) : null;
    if (patch === this.active) return;
    this.active = patch;
    this.onActive(patch);
  }

  key(event) {
    const chips = [...this.container.querySelectorAll(".chip")];
    const at = chips.indexOf(event.target);
    if (at < 0) return;
    const to = { ArrowRight: at + 1, ArrowDown: at + 1, ArrowLeft: at - 1, ArrowUp: at - 1, Home: 0,
      End: chips.length - 1 }[event.key];
    if (to === undefined || to < 0 || to >= chips.length) return;
    event.preventDefault();
    chips[at].tabIndex = -1;
    chips[to].tabIndex = 0;
    chips[to].focus();
  }
}
