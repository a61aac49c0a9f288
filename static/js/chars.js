// The characters of UTF-8 bytes, for showing patches. BLT cuts bytes, not characters, so a patch
// boundary may fall inside a character (Chinese, Arabic, emoji). Every page shows such a
// character whole in each patch that holds part of it, bracketed and marked, with its bytes on
// hover, never as U+FFFD; a byte that is not valid UTF-8 (a model may generate one) shows as \xNN.

/** Length of the UTF-8 sequence that `bytes[i]` leads, if bytes[i..] holds a valid one; else 0. */
function sequenceLength(bytes, i) {
  const b = bytes[i];
  if (b < 0x80) return 1;
  const n = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
  if (!n || i + n > bytes.length) return 0;
  // the second byte's range excludes overlong forms, surrogates and code points past U+10FFFF
  const lo = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80;
  const hi = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf;
  if (bytes[i + 1] < lo || bytes[i + 1] > hi) return 0;
  for (let k = 2; k < n; k++) if ((bytes[i + k] & 0xc0) !== 0x80) return 0;
  return n;
}

function codePoint(bytes, i, n) {
  if (n === 1) return bytes[i];
  let cp = bytes[i] & (0xff >> (n + 1));
  for (let k = 1; k < n; k++) cp = (cp << 6) | (bytes[i + k] & 0x3f);
  return cp;
}

export function hex(b) {
  return b.toString(16).padStart(2, "0");
}

/** The bytes [start, end) as hex pairs: "e4 bb 8a". */
export function hexBytes(bytes, start, end) {
  const out = [];
  for (let i = start; i < end; i++) out.push(hex(bytes[i]));
  return out.join(" ");
}

/** The characters of a byte array, decoded once per text; everything else reads this table. */
export class CharTable {
  constructor(bytes) {
    this.bytes = bytes;
    this.charOf = new Int32Array(bytes.length);     // byte -> character index
    this.starts = [];                               // character -> its first byte
    this.texts = [];                                // character -> its text, or \xNN for an invalid byte
    this.valid = [];
    for (let i = 0; i < bytes.length;) {
      const n = sequenceLength(bytes, i);
      const c = this.starts.length;
      this.starts.push(i);
      this.valid.push(n > 0);
      this.texts.push(n ? String.fromCodePoint(codePoint(bytes, i, n)) : `\\x${hex(bytes[i])}`);
      this.charOf.fill(c, i, i + Math.max(n, 1));
      i += Math.max(n, 1);
    }
    this.starts.push(bytes.length);
  }

  get length() {
    return this.texts.length;
  }

  /** [first byte, end) of character c. */
  span(c) {
    return [this.starts[c], this.starts[c + 1]];
  }

  /** "今 U+4ECA · e4 bb 8a", or "invalid UTF-8 byte 0x9f". */
  describe(c) {
    const [s, e] = this.span(c);
    if (!this.valid[c]) return `invalid UTF-8 byte 0x${hex(this.bytes[s])}`;
    const cp = this.texts[c].codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
    return `${this.texts[c]} U+${cp} · ${hexBytes(this.bytes, s, e)}`;
  }

  /**
   * The bytes [start, end) as runs for display: {text} for whole characters (consecutive ones
   * joined), {text, partial, title} for a character only partly inside (shown whole, bracketed),
   * {text, invalid, title} for an invalid byte.
   */
  runs(start, end) {
    const out = [];
    let plain = "";
    const flush = () => {
      if (plain) out.push({ text: plain });
      plain = "";
    };
    for (let c = start < end ? this.charOf[start] : this.length; c < this.length && this.starts[c] < end; c++) {
      const [s, e] = this.span(c);
      if (!this.valid[c]) {
        flush();
        out.push({ text: this.texts[c], invalid: true, title: this.describe(c) });
      } else if (s < start || e > end) {
        flush();
        const held = hexBytes(this.bytes, Math.max(s, start), Math.min(e, end));
        out.push({ text: `[${this.texts[c]}]`, partial: true,
          title: `${this.describe(c)}: split across patches; this one holds ${held}` });
      } else {
        plain += this.texts[c];
      }
    }
    flush();
    return out;
  }

  /** The runs of [start, end) as one string ("ab[今]"), for labels. */
  label(start, end) {
    return this.runs(start, end).map((r) => r.text).join("");
  }

  /** The characters that begin in [start, end): consecutive ranges give the text back exactly. */
  textFrom(start, end) {
    let out = "";
    for (let c = start < end ? this.charOf[start] : this.length; c < this.length && this.starts[c] < end; c++) {
      if (this.starts[c] >= start) out += this.valid[c] ? this.texts[c] : "";
    }
    return out;
  }
}
