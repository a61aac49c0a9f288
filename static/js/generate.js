// Generate: POST /api/generate/stream and read the server-sent events with fetch() (EventSource
// cannot POST). Bytes are shown as patch chips of whole characters (chars.js) and the entropy
// trace grows; Stop (or Esc) aborts the request, which stops generation on the server. Limits are
// the server's, checked before sending; a 429 (every generation slot busy) is retried after the
// server's Retry-After, saying so.
import { ApiError, clearError, loadedModel, postStream, showError } from "./api.js";
import { CharTable } from "./chars.js";
import { chip, ChipList, meanOf } from "./chips.js";
import { byteRows, downloadButtons, patchRows, setDownloadable } from "./downloads.js";
import { Permalink, readFragment } from "./permalink.js";
import { events } from "./sse.js";
import { TraceOverlay } from "./trace_overlay.js";
import {
  baseLayout, countBytes, debounce, el, fmt, numberOrNull, PATCH_COLORS, plotConfig, setRange, shortcuts, utf8, visible,
} from "./ui.js";

const $ = (id) => document.getElementById(id);
const form = $("gen-form");
const prompt = $("prompt");
const startButton = $("start");
const stopButton = $("stop-button");
const plot = $("entropy-plot");
const NUMBERS = ["max_new_bytes", "temperature", "top_k", "top_p", "repetition_penalty", "seed", "threshold",
  "max_patch_length"];
const BUSY_FOR_S = 30;         // how long a 429 is retried before the page gives up

let controller = null;         // AbortController of the generation under way (or waiting)
let info = null;               // /api/models
let run = null;                // the Run shown
let lastSeed = null;           // the seed of the last run, when the page chose it

const overlay = new TraceOverlay(plot);
const chips = new ChipList($("output-chips"), { label: "generated patches", onActive: linkChip });
const permalink = new Permalink({ button: $("copy-link"), status: $("link-status"), onChange: restore });
const saveLink = debounce(() => permalink.save(linkState()), 300);

function linkState() {
  const state = { text: prompt.value, mode: $("mode").value, stop: $("stop").value };
  for (const name of NUMBERS) state[name] = $(name).value;
  if (!state.seed && lastSeed !== null) state.seed = String(lastSeed);   // the link reproduces the run shown
  return state;
}

// ---------------------------------------------------------------------------------- limits
function stopStrings() {
  return $("stop").value.split(",").map((s) => s.replace(/\\n/g, "\n")).filter((s) => s.length);
}

/** The prompt's byte limit for the current max_new_bytes: BOS + prompt + new bytes fit the context. */
function promptLimit() {
  const { limits } = info;
  const newBytes = numberOrNull($("max_new_bytes")) ?? limits.default_new_bytes;
  return Math.max(0, Math.min(limits.max_text_bytes, limits.context_bytes - 1 - newBytes));
}

/** Check the prompt and stop strings against the server's limits (the form's own validity, so the
 * browser refuses to submit and says why) and show the prompt's byte count. */
function checkLimits() {
  if (!info) return;
  const limit = promptLimit();
  const fits = countBytes(prompt.value, limit, $("prompt-bytes"));
  const rule = `BOS + prompt + max new bytes ≤ the model's context of ${info.limits.context_bytes.toLocaleString("en")} bytes`;
  prompt.setCustomValidity(fits ? "" : `The prompt is over ${limit} bytes (${rule}).`);
  $("prompt-note").textContent = fits ? `(${rule})` : `Too long: ${rule}.`;
  const stops = stopStrings();
  const long = stops.find((s) => utf8(s).length > info.limits.max_stop_bytes);
  $("stop").setCustomValidity(stops.length > info.limits.max_stop_strings
    ? `At most ${info.limits.max_stop_strings} stop strings.`
    : long ? `A stop string may have at most ${info.limits.max_stop_bytes} bytes.` : "");
}

/** The request body; empty optional fields (the mode too) are left out, so the server applies the
 * model's defaults, the same ones /api/models reports. Without a seed the page picks one, so the
 * run can be linked and repeated. */
function requestBody() {
  const body = { prompt: prompt.value };
  if ($("mode").value) body.mode = $("mode").value;
  for (const name of NUMBERS) {
    const value = numberOrNull($(name));
    if (value !== null) body[name] = value;
  }
  lastSeed = null;
  if (body.seed === undefined) {
    lastSeed = crypto.getRandomValues(new Uint32Array(1))[0];
    body.seed = lastSeed;
  }
  const stop = stopStrings();
  if (stop.length) body.stop = stop;
  return body;
}

// ---------------------------------------------------------------------------------- one run
/** What the page shows of one generation: its bytes, their entropies and patches. */
class Run {
  constructor(body) {
    this.body = body;
    this.bytes = [];
    this.entropies = [];
    this.globalSteps = [];
    this.startsPatch = [];    // the server's word (the first byte may continue the prompt's last patch)
    this.patches = [];        // {index, start, length}: the chips (the first opens with the first byte)
    this.patchIds = [];
    this.dirty = 0;           // first patch whose chip is out of date
    this.shown = 0;           // bytes already on the chart
    this.started = performance.now();
    this.frame = null;
    this.table = new CharTable([]);
    $("output-prompt").textContent = visible(body.prompt);
    chips.replace([]);
    Plotly.react(plot, [{
      type: "scatter", mode: "lines+markers", x: [], y: [], customdata: [],
      line: { color: "#9aa3b5", width: 1 }, marker: { size: 6, color: [] },
      hovertemplate: "new byte %{x}<br>entropy %{y:.3f} nats<br>patch %{customdata}<extra></extra>",
    }], baseLayout({
      xaxis: { title: { text: "generated byte" } }, yaxis: { title: { text: "entropy (nats)" }, rangemode: "tozero" },
      shapes: thresholdLine(body), hovermode: "closest",
    }), plotConfig("blt-generate-entropy"));
    overlay.attach();
    overlay.clear();
    if (!plot.dataset.linked) {
      plot.dataset.linked = "1";
      plot.on("plotly_hover", (event) => run?.hover(event.points[0].pointIndex));
      plot.on("plotly_unhover", () => linkChip(null));
    }
  }

  byte({ byte, entropy, starts_patch: startsPatch, global_step: globalStep }) {
    const i = this.bytes.length;
    if (startsPatch || !this.patches.length) {
      this.patches.push({ index: this.patches.length, start: i, length: 0 });
    }
    const patch = this.patches[this.patches.length - 1];
    patch.length += 1;
    this.bytes.push(byte);
    this.entropies.push(entropy);
    this.globalSteps.push(globalStep);
    this.startsPatch.push(startsPatch);
    this.patchIds.push(patch.index);
    // a character finished by this byte began at most 3 bytes before it (UTF-8), perhaps two or
    // three patches back when every byte is a patch: those chips are redrawn whole
    this.dirty = Math.min(this.dirty, this.patchIds[Math.max(0, i - 3)]);
    this.frame ??= requestAnimationFrame(() => this.flush());
  }

  // Redraw at most once per animation frame, however fast bytes arrive.
  flush() {
    this.frame = null;
    if (this.shown === this.bytes.length) return;
    this.table = new CharTable(this.bytes);
    chips.replaceFrom(this.dirty, this.patches.slice(this.dirty).map((p) =>
      chip(this.table, { ...p, meanEntropy: meanOf(this.entropies, p.start, p.length) })));
    this.dirty = this.patches.length - 1;
    const x = [];
    for (let i = this.shown; i < this.bytes.length; i++) x.push(i);
    const ids = this.patchIds.slice(this.shown);
    Plotly.extendTraces(plot, { x: [x], y: [this.entropies.slice(this.shown)], customdata: [ids],
      "marker.color": [ids.map((j) => PATCH_COLORS[j % PATCH_COLORS.length])] }, [0]);
    this.shown = this.bytes.length;
    const seconds = (performance.now() - this.started) / 1000;
    const steps = this.globalSteps.filter(Boolean).length;
    showStats({ new_bytes: this.bytes.length, bytes_per_s: this.bytes.length / seconds, global_steps: steps,
      global_step_share: steps / this.bytes.length });
    setDownloadable($("downloads"), true);
  }

  hover(i) {
    const j = this.patchIds[i];
    if (j === undefined) return;
    chips.highlight(j, true);
    const p = this.patches[j];
    overlay.highlight(p.start, p.start + p.length);
  }
}

/** A chip was hovered or focused (null: left): its bytes light up on the chart. */
function linkChip(j) {
  chips.highlight(j);
  const p = j === null ? null : run?.patches[j];
  if (p) overlay.highlight(p.start, p.start + p.length);
  else overlay.highlight(null);
}

/** The global threshold as a dashed line (entropy mode only: the other rules are not a level). */
function thresholdLine(body) {
  const mode = body.mode ?? info?.defaults.mode;
  const threshold = body.threshold ?? info?.defaults.threshold;
  if (mode !== "entropy" || threshold == null) return [];
  return [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: threshold, y1: threshold,
    line: { color: "#e15759", width: 2, dash: "dash" } }];
}

function showStats(stats) {
  $("stat-bytes").textContent = stats ? String(stats.new_bytes) : "–";
  $("stat-rate").textContent = stats ? fmt(stats.bytes_per_s, 1) : "–";
  $("stat-steps").textContent = stats ? String(stats.global_steps) : "–";
  $("stat-share").textContent = stats?.new_bytes ? fmt(stats.global_step_share, 2) : "–";
}

function showState(state) {
  $("stat-reason").textContent = state;
  document.body.dataset.state = state;   // read by the browser tests
}

/** Wait ms, or until the signal aborts (then throw its AbortError). */
function wait(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("stopped", "AbortError"));
    }, { once: true });
  });
}

/** POST the stream request. A 429 (every generation slot is busy) says so and is retried after
 * the server's Retry-After, counting down, for up to BUSY_FOR_S seconds. */
async function startStream(body, signal) {
  const until = performance.now() + BUSY_FOR_S * 1000;
  for (;;) {
    try {
      const response = await postStream("/api/generate/stream", body, signal);
      $("busy").textContent = "";
      return response;
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 429) || performance.now() > until) throw err;
      showState("waiting");
      for (let s = err.retryAfter ?? 1; s > 0; s--) {
        $("busy").textContent = `The model is busy (every generation slot is in use): retry in ${s} s. Stop (Esc) cancels.`;
        await wait(1000, signal);
      }
      $("busy").textContent = "Retrying…";
    }
  }
}

/** Enable Generate or Stop; focus follows when it sat on the button being disabled. */
function running(on) {
  const from = on ? startButton : stopButton;
  const to = on ? stopButton : startButton;
  const hadFocus = document.activeElement === from || document.activeElement === document.body;
  to.disabled = false;
  if (hadFocus) to.focus();
  from.disabled = true;
}

function clearRun() {
  run = null;
  chips.replace([]);
  $("output-prompt").textContent = "";
  overlay.clear();
  showStats(null);
  $("stat-seed").textContent = "–";
  setDownloadable($("downloads"), false);
}

async function generate(event) {
  event?.preventDefault();
  if (controller) return;
  checkLimits();
  if (!form.reportValidity()) return;
  clearError();
  $("busy").textContent = "";
  clearRun();
  controller = new AbortController();
  running(true);
  const body = requestBody();
  $("stat-seed").textContent = String(body.seed);
  saveLink();
  showState("streaming");
  run = new Run(body);
  try {
    const response = await startStream(body, controller.signal);
    showState("streaming");       // again, after a wait for a slot
    for await (const { event: name, data } of events(response)) {
      if (name === "byte") run.byte(data);
      else if (name === "error") throw new ApiError(null, data.error_type, data.error);
      else if (name === "done") {
        run.flush();
        showStats(data.stats);
        showState(data.stop_reason);
      }
    }
  } catch (err) {
    run.flush();
    if (err.name === "AbortError") showState("stopped");
    else {
      if (!run.bytes.length) clearRun();      // nothing of this run to show: no leftovers either
      showState(err.status === 429 ? "busy" : "error");
      if (err.status === 429) $("busy").textContent = "Still busy: press Generate to try again.";
      showError(err);
    }
  } finally {
    controller = null;
    running(false);
  }
}

function downloads() {
  downloadButtons($("downloads"), "blt-generate", {
    bytes: () => byteRows(run.table, { entropy: run.entropies, patch: run.patchIds,
      starts_patch: run.startsPatch, global_step: run.globalSteps }),
    patches: () => patchRows(run.table, run.patches, (p) => ({ mean_entropy: meanOf(run.entropies, p.start, p.length) })),
  }, () => ({ page: "generate", model: info?.model.name, request: run.body, state: document.body.dataset.state,
    link: location.href }));
  setDownloadable($("downloads"), false);
}

function restore(state) {
  prompt.value = state.text ?? "";
  if ([...$("mode").options].some((o) => o.value === state.mode)) $("mode").value = state.mode;
  $("stop").value = state.stop ?? "";
  for (const name of NUMBERS) $(name).value = state[name] ?? "";
  lastSeed = null;
  checkLimits();
}

async function init() {
  downloads();
  form.addEventListener("submit", generate);
  form.addEventListener("input", () => {
    checkLimits();
    saveLink();
  });
  stopButton.addEventListener("click", () => controller?.abort());
  shortcuts({ run: () => form.requestSubmit(), stop: () => controller?.abort() });
  try {
    info = await loadedModel();
    const { defaults, limits } = info;
    $("mode").replaceChildren(...info.modes.map((m) => el("option", { value: m, textContent: m })));
    $("mode").value = defaults.mode;
    $("threshold").placeholder = `default ${fmt(defaults.threshold, 3)}`;
    $("max_patch_length").placeholder = defaults.max_patch_length ? `default ${defaults.max_patch_length}` : "none";
    setRange($("max_new_bytes"), [1, limits.max_new_bytes]);
    setRange($("temperature"), limits.temperature);
    setRange($("top_k"), limits.top_k);
    $("top_p").max = String(limits.top_p[1]);
    setRange($("repetition_penalty"), limits.repetition_penalty);
    setRange($("threshold"), limits.threshold);
    setRange($("max_patch_length"), limits.max_patch_length);
  } catch (err) {
    showError(err);
  }
  const linked = await readFragment().catch(() => null);
  if (linked) restore(linked);
  checkLimits();
}

init();
