// Fetch helper for the JSON API: errors come back as {"error", "error_type"}; we show the message.

export class ApiError extends Error {
  constructor(status, errorType, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.errorType = errorType;
    this.retryAfter = retryAfter;     // seconds, from a 429's or 503's Retry-After header
  }
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: fall back to the status line
  }
  const message = body && typeof body.error === "string" ? body.error : `${response.status} ${response.statusText}`;
  const retryAfter = Number.parseInt(response.headers.get("Retry-After"), 10);
  return new ApiError(response.status, body ? body.error_type : "http", message,
    Number.isFinite(retryAfter) ? retryAfter : null);
}

/** GET (no body) or POST (body) a JSON endpoint; resolves to the parsed JSON, rejects with ApiError. */
export async function fetchJSON(url, { body, signal } = {}) {
  const init = body === undefined ? { signal } : {
    method: "POST", signal, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(url, init);
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

/** POST a JSON body and return the raw response (for streams); rejects with ApiError on !ok. */
export async function postStream(url, body, signal) {
  const response = await fetch(url, {
    method: "POST", signal, headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await errorFrom(response);
  return response;
}

/** "busy, retry in 1 s" for an error that says when to retry; "" otherwise. */
export function retryHint(err) {
  return err instanceof ApiError && err.retryAfter !== null ? `busy, retry in ${err.retryAfter} s` : "";
}

/** Show an error in the page's banner (textContent only: messages may echo user input). */
export function showError(err) {
  const banner = document.getElementById("error");
  const prefix = err instanceof ApiError ? `${err.status ?? ""} ${err.errorType}: `.trimStart() : "";
  const hint = retryHint(err);
  banner.textContent = prefix + (err && err.message ? err.message : String(err)) + (hint ? ` (${hint})` : "");
  banner.hidden = false;
}

export function clearError() {
  const banner = document.getElementById("error");
  banner.hidden = true;
  banner.textContent = "";
}

let modelsPromise = null;
/** GET /api/models once per page. */
export function models() {
  modelsPromise ??= fetchJSON("/api/models");
  return modelsPromise;
}

/** /api/models of a loaded model; rejects with the load error when the server is degraded. */
export async function loadedModel() {
  const info = await models();
  if (!info.defaults) throw new ApiError(503, "model_unavailable", info.model.error ?? "the model is not loaded");
  return info;
}
