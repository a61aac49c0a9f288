// API docs: every operation of /api/openapi.json with its example request and responses.
import { fetchJSON, showError } from "./api.js";
import { el } from "./ui.js";

const $ = (id) => document.getElementById(id);
const METHODS = ["get", "post", "put", "patch", "delete"];

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

function curl(path, method, op) {
  const example = exampleOf(op.requestBody?.content?.["application/json"]);
  const url = `${location.origin}${path.replace(/\{(\w+)\}/g, (_, name) => {
    const param = op.parameters?.find((p) => p.name === name);
    return param?.example ?? param?.schema?.example ?? `<${name}>`;
  })}`;
  if (example === undefined) return `curl -s '${url}'`;
  const body = JSON.stringify(example).replace(/'/g, "'\\''");
  return `curl -s -X ${method.toUpperCase()} '${url}' -H 'Content-Type: application/json' -d '${body}'`;
}

function parameters(op) {
  if (!op.parameters?.length) return null;
  return el("table", { className: "table" },
    el("thead", {}, el("tr", {}, ...["parameter", "in", "description"].map((h) => el("th", { textContent: h })))),
    el("tbody", {}, ...op.parameters.map((p) => el("tr", {},
      el("td", {}, el("code", { textContent: p.name })), el("td", { textContent: p.in }),
      el("td", { textContent: p.description ?? (p.schema?.enum ? p.schema.enum.join(" | ") : "") })))));
}

function operation(path, method, op) {
  const id = `${method}-${path}`.replace(/[^A-Za-z0-9]+/g, "-");
  const section = el("section", { className: "panel endpoint", id },
    el("h2", {}, el("span", { className: `method ${method}`, textContent: method.toUpperCase() }), " ",
      el("code", { textContent: path })),
    op.summary ? el("p", { textContent: op.summary }) : null,
    op.description ? el("p", { className: "muted", textContent: op.description }) : null,
    parameters(op),
    el("pre", { className: "curl", textContent: curl(path, method, op) }));
  if (op.requestBody) section.append(el("h3", { textContent: "Request" }), exampleBlock(op.requestBody.content));
  for (const [status, response] of Object.entries(op.responses ?? {})) {
    section.append(el("h3", { textContent: `Response ${status}` }),
      el("p", { className: "muted", textContent: response.description ?? "" }), exampleBlock(response.content));
  }
  return { id, section };
}

async function init() {
  try {
    const doc = await fetchJSON("/api/openapi.json");
    $("api-info").textContent = `${doc.info?.title ?? "API"} ${doc.info?.version ?? ""} · OpenAPI ${doc.openapi}`;
    const ops = Object.entries(doc.paths).flatMap(([path, item]) =>
      METHODS.filter((m) => item[m]).map((m) => operation(path, m, item[m])));
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
