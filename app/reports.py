"""blt_core results shaped as the API's JSON: per-byte tables, patches and their statistics.

Everything here is over the text's bytes (its UTF-8 encoding), BOS excluded:
- `entropies[i]`: blt_core's entropy after byte i, in nats (the model's uncertainty about byte
  i+1), i.e. `model.patch(text).entropies[1:]`;
- patches: blt_core's patches without the BOS patch, starts as byte offsets. In byte terms the
  rules read: byte 0 starts a patch; byte i >= 1 starts one when entropies[i-1] > threshold
  (entropy), when i == 1 or entropies[i-1] - entropies[i-2] > threshold (entropy_monotonic), when
  i % patch_size == 0 (static), when byte i-1 is ASCII but not a letter or digit (space); then
  max_patch_length splits longer patches from their start.
"""
from __future__ import annotations

from collections import Counter

from blt_core.bpe import Tokens, Vocabulary
from blt_core.patching import Patches
from blt_core.tokenizer import OFFSET, SPECIAL_NAMES

ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def show_char(ch: str) -> str:
    """A character as something printable: itself, or an escape such as \\n or \\x00."""
    if ch in ESCAPES:
        return ESCAPES[ch]
    if ch.isprintable():
        return ch
    return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"


def byte_table(text: str) -> dict:
    """bytes, and for each byte the character it belongs to and that character's index."""
    data, chars, char_index = [], [], []
    for k, ch in enumerate(text):
        encoded = ch.encode("utf-8")
        data.extend(encoded)
        chars.extend([show_char(ch)] * len(encoded))
        char_index.extend([k] * len(encoded))
    return {"bytes": data, "chars": chars, "char_index": char_index}


def byte_patches(patches: Patches) -> tuple[list[int], list[int]]:
    """blt_core's position patches (BOS + bytes) -> (lengths, starts) over bytes."""
    return patches.lengths[1:], [s - 1 for s in patches.starts[1:]]


def patch_stats(lengths: list[int]) -> dict:
    n_bytes, n_patches = sum(lengths), len(lengths)
    return {"bytes": n_bytes, "patches": n_patches,
            "mean_patch_bytes": n_bytes / n_patches if n_patches else None,
            "global_steps_saved": n_bytes - n_patches,
            "histogram": {str(size): count for size, count in sorted(Counter(lengths).items())}}


def patch_report(data: bytes, lengths: list[int], starts: list[int]) -> dict:
    """Patch lists of one text: per-byte patch ids, each patch's text, statistics."""
    return {
        "patch_lengths": lengths, "patch_starts": starts,
        "patch_ids": [j for j, n in enumerate(lengths) for _ in range(n)],
        "patches": [{"index": j, "start": s, "length": n,
                     "text": data[s:s + n].decode("utf-8", errors="backslashreplace")}
                    for j, (s, n) in enumerate(zip(starts, lengths))],
        "stats": patch_stats(lengths),
    }


def token_report(data: bytes, tokens: Tokens, vocab: Vocabulary) -> dict:
    """One vocabulary's tokens of a text: ids and byte spans, counts, and `spans` for display with
    characters whole: a token that starts inside a character (a BPE token may end mid-character)
    joins the span before it, so each span is whole characters and counts 1 or more tokens."""
    spans = []
    for start, length in zip(tokens.starts, tokens.lengths):
        if spans and (data[start] & 0xC0) == 0x80:          # a UTF-8 continuation byte
            spans[-1]["length"] += length
            spans[-1]["tokens"] += 1
        else:
            spans.append({"start": start, "length": length, "tokens": 1})
    for span in spans:
        span["text"] = data[span["start"]:span["start"] + span["length"]].decode("utf-8")
    n = len(tokens.ids)
    return {"name": vocab.name, "label": vocab.label, "vocab_size": vocab.n_tokens, "tokens": n,
            "bytes_per_token": len(data) / n if n else None, "token_ids": tokens.ids,
            "token_starts": tokens.starts, "token_lengths": tokens.lengths, "spans": spans}


def next_byte_table(text: str, start: int, entropies: list[float], probs: list[list[float]],
                    ids: list[list[int]]) -> list[dict]:
    """One row per byte of `text` from byte `start`: the byte, its character (as byte_table
    shows it), the entropy after it (nats) and the entropy model's most likely next tokens after
    it, most likely first: {byte, p}, or {token, p} for a special token ("eos", ...)."""
    table = byte_table(text)
    return [{"i": i, "byte": table["bytes"][i], "char": table["chars"][i], "entropy": entropy,
             "next": [{"byte": t - OFFSET, "p": p} if t >= OFFSET else {"token": SPECIAL_NAMES[t], "p": p}
                      for t, p in zip(top, top_p)]}
            for i, entropy, top_p, top in zip(range(start, start + len(entropies)), entropies, probs, ids)]
