// Permalinks: a page's text and settings live in the URL's fragment (#mode=space&threshold=1.2&t=…),
// so a reload or a shared link restores the page. The fragment never reaches the server. Long text
// is deflated (the browser's CompressionStream("deflate-raw")) and base64url-encoded as z=…;
// short text stays readable as t=….
import { el } from "./ui.js";

const PLAIN_MAX = 200;   // characters of URL-encoded text kept readable

function base64url(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text) {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

async function through(bytes, stream) {
  return new Uint8Array(await new Response(new Blob([bytes]).stream().pipeThrough(stream)).arrayBuffer());
}

/** [name, value] of a text in the fragment: t=<text> or z=<deflate-raw, base64url>. */
async function textEntry(text) {
  if (encodeURIComponent(text).length <= PLAIN_MAX) return ["t", text];
  return ["z", base64url(await through(new TextEncoder().encode(text), new CompressionStream("deflate-raw")))];
}

/** The fragment for `state` ({text, name: value, ...}; null or "" values are left out). */
export async function fragmentOf(state) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(state)) {
    if (value === null || value === undefined || value === "") continue;
    if (name === "text") params.append(...(await textEntry(value)));
    else params.append(name, String(value));
  }
  return `#${params}`;
}

/** The state in the URL's fragment ({text, name: value-as-string, ...}), or null without one (a
 * fragment that is an element's id, like #main, is no state). */
export async function readFragment(hash = location.hash) {
  if (!hash.includes("=")) return null;
  const params = new URLSearchParams(hash.slice(1));
  const state = {};
  for (const [name, value] of params) {
    if (name === "t") state.text = value;
    else if (name === "z") {
      state.text = new TextDecoder().decode(await through(fromBase64url(value), new DecompressionStream("deflate-raw")));
    } else state[name] = value;
  }
  return state;
}

/**
 * Keep the URL in step with a page: save(state) writes the fragment (history.replaceState: no
 * new history entry, no reload); onChange(state) is called when the fragment is edited or a link
 * is opened in this tab. A "Copy link" button copies the current URL.
 */
export class Permalink {
  constructor({ button, status, onChange }) {
    this.written = location.hash;
    this.pending = Promise.resolve();
    window.addEventListener("hashchange", async () => {
      if (location.hash === this.written) return;
      this.written = location.hash;
      const state = await readFragment();
      if (state) onChange(state);
    });
    button?.addEventListener("click", () => this.copy(status));
  }

  save(state) {
    this.pending = this.pending.then(async () => {
      const fragment = await fragmentOf(state);
      if (fragment === location.hash) return;
      this.written = fragment;
      history.replaceState(null, "", fragment.length > 1 ? fragment : location.pathname + location.search);
    }).catch(() => {});      // a link that cannot be written leaves the last one in place
    return this.pending;
  }

  async copy(status) {
    await this.pending;
    const url = location.href;
    try {
      await navigator.clipboard.writeText(url);
      status.replaceChildren("Link copied.");
    } catch {
      // no clipboard (a page served over plain http): offer the link to copy by hand
      const field = el("input", { type: "text", readOnly: true, value: url, className: "link-field" });
      field.setAttribute("aria-label", "link to this page");
      status.replaceChildren(field);
      field.select();
    }
  }
}
