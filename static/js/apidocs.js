// API docs: every operation of /api/openapi.json with its example request and responses, and a
// "Try it" button that sends the (editable) example from this page and shows the answer.
// File endpoints' examples name a file this server has (GET /api/visualizations), so none of
// them points at a file that a fresh clone lacks.
import { fetchJSON, showError } from "./api.js";
import { el } from "./ui.js";

const $ = (id) => document.getElementById(id);
const METHODS = ["get", "post", "put", "patch", "delete"];
const SHOW_CHARS = 20_000;      // of a text answer; the rest is counted, not shown
const FILE_KINDS = { "/visualizations/": "html", "/images/": "image", "/data/": "data" };

/** The example of a media-type object: `example`, the first of `examples`, or the schema's. */
function exampleOf(media) {
  if (!media) return undefined;
  if (media.example !== undefined) return media.example;
  const first = media.examples && Object.values(media.examples)[0];
  if (first) return first.value ?? first.externalValue;
  return media.schema?.example ?? media.schema?.examples?.[0];
}

/** JSON indented by 2, with arrays of plain values kept on one line (per-byte lists stay short). */
function pretty(value) {
  return JSON.stringify(value, null, 2)
    .replace(/\[\n\s+([^[\]{}]*?)\n\s*\]/g, (_, items) => `[${items.split(/,\n\s*/).join(", ")}]`);
}

function exampleBlock(content) {
  if (!content) return el("p", { className: "muted", textContent: "no body" });
  const [type, media] = Object.entries(content)[0];
  const example = exampleOf(media);
  if (example === undefined) return el("p", { className: "muted", textContent: type });
  const shown = typeof example === "string" ? example : pretty(example);
  return el("div", {}, el("small", { className: "muted", textContent: type }), el("pre", { textContent: shown }));
}

/** A path parameter's example: for a stored file, one this server has (files: /api/visualizations). */
function paramExample(path, param, files) {
  const example = param.example ?? param.schema?.example;
  const prefix = Object.keys(FILE_KINDS).find((p) => path.startsWith(p));
  if (!prefix || !files) return example;
  const mine = files.filter((f) => f.url.startsWith(prefix));
  return mine.some((f) => f.name === example) ? example : mine[0]?.name ?? "";
}

function curl(url, method, body, media = "application/json") {
  if (body === undefined) return `curl -s '${url}'`;
  return `curl -s -X ${method.toUpperCase()} '${url}' -H 'Content-Type: ${media}' --data-binary '${body.replace(/'/g, "'\\''")}'`;
}

/** The request form of one operation: path/query parameters and the JSON body, all editable. */
function requestForm(path, method, op, files) {
  const inputs = {};
  const fields = [];
  for (const param of op.parameters ?? []) {
    const value = param.in === "path" ? paramExample(path, param, files) : param.schema?.default;
    const input = param.schema?.enum
      ? el("select", {}, ...param.schema.enum.map((v) => el("option", { value: v, textContent: v })))
      : el("input", { type: "text", value: value ?? "" });
    if (value !== undefined) input.value = value;
    inputs[param.name] = { param, input };
    fields.push(el("label", {}, `${param.name} `, input));
    if (param.in === "path" && !input.value && files) {
      fields.push(el("span", { className: "muted no-file", textContent:
        `No ${FILE_KINDS[Object.keys(FILE_KINDS).find((p) => path.startsWith(p))]} file is stored yet: `
        + "python -m app.export writes every figure as HTML and PNG." }));
    }
  }
  const missing = () => Object.values(inputs).some(({ param, input }) => param.in === "path" && !input.value);
  // the body's media type: JSON, or a raw text/plain body (a corpus upload)
  const media = Object.keys(op.requestBody?.content ?? {})[0] ?? "application/json";
  const example = exampleOf(op.requestBody?.content?.[media]);
  const body = example === undefined ? null : el("textarea", { className: "try-body", rows: 4, spellcheck: false,
    value: media === "application/json" ? JSON.stringify(example, null, 1) : String(example) });
  body?.setAttribute("aria-label", `${method.toUpperCase()} ${path} request body`);
  const url = () => {
    const query = new URLSearchParams();
    const filled = path.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(inputs[name]?.input.value ?? "") || `<${name}>`);
    for (const { param, input } of Object.values(inputs)) if (param.in === "query" && input.value) query.set(param.name, input.value);
    return `${filled}${String(query) ? `?${query}` : ""}`;
  };
  return { fields, body, url, missing, media };
}

function operation(path, method, op, files) {
  const id = `${method}-${path}`.replace(/[^A-Za-z0-9]+/g, "-");
  const form = requestForm(path, method, op, files);
  const compact = () => {
    if (!form.body) return undefined;
    return form.media === "application/json" ? JSON.stringify(JSON.parse(form.body.value)) : form.body.value;
  };
  const result = el("div", { className: "try-result" });
  result.setAttribute("aria-live", "polite");
  const button = el("button", { type: "button", className: "try", textContent: "Try it" });
  button.addEventListener("click", () => tryIt(method, form, result, button));
  const curlLine = el("pre", { className: "curl" });
  const showCurl = () => {
    button.disabled = form.missing();       // a path parameter to fill in first
    try {
      curlLine.textContent = curl(`${location.origin}${form.url()}`, method, compact(), form.media);
    } catch {
      curlLine.textContent = "(the body is not valid JSON)";
    }
  };
  for (const control of [...form.fields.filter((f) => f.tagName === "LABEL").map((l) => l.lastChild), form.body]) {
    control?.addEventListener("input", showCurl);
  }
  showCurl();
  const section = el("section", { className: "panel endpoint", id },
    el("h2", {}, el("span", { className: `method ${method}`, textContent: method.toUpperCase() }), " ",
      el("code", { textContent: path })),
    op.summary ? el("p", { textContent: op.summary }) : null,
    op.description ? el("p", { className: "muted", textContent: op.description }) : null,
    parameters(op), curlLine);
  section.append(el("h3", { textContent: "Try it" }),
    form.fields.length ? el("div", { className: "controls" }, ...form.fields) : null,
    form.body, el("div", { className: "actions" }, button), result);
  if (op.requestBody) section.append(el("h3", { textContent: "Example request" }), exampleBlock(op.requestBody.content));
  for (const [status, response] of Object.entries(op.responses ?? {})) {
    section.append(el("h3", { textContent: `Response ${status}` }),
      el("p", { className: "muted", textContent: response.description ?? "" }), exampleBlock(response.content));
  }
  return { id, section };
}

function parameters(op) {
  if (!op.parameters?.length) return null;
  return el("table", { className: "table" },
    el("thead", {}, el("tr", {}, ...["parameter", "in", "description"].map((h) => el("th", { textContent: h })))),
    el("tbody", {}, ...op.parameters.map((p) => el("tr", {},
      el("td", {}, el("code", { textContent: p.name })), el("td", { textContent: p.in }),
      el("td", { textContent: p.description ?? (p.schema?.enum ? p.schema.enum.join(" | ") : "") })))));
}

/** Send the request and show status, type, time and body (JSON pretty, streams as they come,
 * images as images, other text cut at SHOW_CHARS). */
async function tryIt(method, form, result, button) {
  const init = { method: method.toUpperCase() };
  if (form.body) {
    init.headers = { "Content-Type": form.media };
    init.body = form.body.value;
  }
  if (button.getAttribute("aria-busy") === "true") return;    // busy, but not disabled: focus stays on it
  const status = el("p", { className: "try-status", textContent: "…" });
  const output = el("pre", { className: "try-output" });
  result.replaceChildren(status, output);
  button.setAttribute("aria-busy", "true");
  const started = performance.now();
  try {
    const response = await fetch(form.url(), init);
    const type = response.headers.get("Content-Type") ?? "";
    const retry = response.headers.get("Retry-After");
    const head = () => `${response.status} ${response.statusText} · ${type.split(";")[0] || "no type"}`
      + `${retry ? ` · Retry-After: ${retry} s` : ""} · ${Math.round(performance.now() - started)} ms`;
    status.textContent = head();
    result.dataset.status = String(response.status);
    if (type.startsWith("image/")) {
      const image = el("img", { src: URL.createObjectURL(await response.blob()), alt: `the ${form.url()} image`, className: "try-image" });
      output.replaceWith(image);
    } else if (type.startsWith("application/json")) {
      output.textContent = pretty(await response.json());
    } else {
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
        output.textContent = text.length > SHOW_CHARS ? `${text.slice(0, SHOW_CHARS)}\n… (${text.length} characters)` : text;
      }
    }
    status.textContent = head();
  } catch (err) {
    status.textContent = `failed: ${err.message}`;
    result.dataset.status = "failed";
  } finally {
    button.removeAttribute("aria-busy");
  }
}

async function init() {
  try {
    const [doc, listing] = await Promise.all([fetchJSON("/api/openapi.json"),
      fetchJSON("/api/visualizations").catch(() => null)]);
    $("api-info").textContent = `${doc.info?.title ?? "API"} ${doc.info?.version ?? ""} · OpenAPI ${doc.openapi}`;
    const ops = Object.entries(doc.paths).flatMap(([path, item]) =>
      METHODS.filter((m) => item[m]).map((m) => operation(path, m, item[m], listing?.files)));
    $("api-toc").replaceChildren(...ops.map(({ id, section }) =>
      el("a", { href: `#${id}`, textContent: section.querySelector("h2").textContent })));
    $("api-endpoints").replaceChildren(...ops.map((o) => o.section));
    // the sections exist only now, after the browser tried to scroll to the URL's #fragment
    if (location.hash) document.getElementById(decodeURIComponent(location.hash.slice(1)))?.scrollIntoView();
  } catch (err) {
    showError(err);
  }
}

init();
