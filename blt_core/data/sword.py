"""Bibles and commentaries from SWORD modules (Debian's sword-text-* and sword-comm-* packages).

The modules are compressed and indexed in SWORD's own format; Debian's `mod2imp` (libsword-utils)
exports one as IMP text: `$$$Book 1:1` lines, each followed by that verse or comment in OSIS or
ThML markup. `imp_to_text` keeps the words: Bible chapters become paragraphs of verses, commentary
entries paragraphs of their own; notes and cross-references are dropped.
"""
from __future__ import annotations

import hashlib
import html
import os
import re
import subprocess
import tempfile
from pathlib import Path

_NOTE = re.compile(r"<note\b[^>]*>.*?</note>", re.S)


def _clean(body: str) -> str:
    b = _NOTE.sub("\x00", body)
    b = re.sub(r"(</(?:w|transChange)>)(?=<(?:w|transChange)\b)", r"\1 ", b)
    b = re.sub(r"<title\b[^>]*>(.*?)</title>", r"\n\1\n", b, flags=re.S)
    b = re.sub(r'<(?:lb|p|div|br)\b[^>]*type="x-p"[^>]*/?>|<lb\b[^>]*/>|</?p\b[^>]*>|<br\s*/?>', "\n", b)
    b = re.sub(r"</?(?:div|milestone|l|lg|item|list|chapter|verse|table|row|cell|head|entryFree|sense|def)\b[^>]*>",
               " ", b)
    b = re.sub(r"<[^>]+>", "", b)
    b = re.sub(r"(?<=\w)\x00+(?=\w)", " ", b).replace("\x00", "")
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in html.unescape(b).split("\n")]
    return "\n".join(line for line in lines if line)


def imp_to_text(imp: str, bible: bool) -> list[tuple[str, str]]:
    """IMP export -> (key, text) documents: one per Bible book (its chapters as paragraphs) or one
    per commentary book. Entries linked to several verses repeat in the export: kept once."""
    blocks = re.split(r"^\$\$\$(.*)$", imp, flags=re.M)
    seen, books = set(), {}
    chapter, verses = None, []
    for key, raw in zip(blocks[1::2], blocks[2::2]):
        body, key = _clean(raw), key.strip()
        if not body:
            continue
        book = re.sub(r"\s*\d+(:\d+)?$", "", key) or key
        if bible:
            digest = hashlib.md5(body.encode()).digest()
            if digest in seen:
                continue
            seen.add(digest)
            ch = key.rsplit(":", 1)[0]
            if ch != chapter:
                if verses:
                    books.setdefault(verses[0][0], []).append(" ".join(v for _, v in verses))
                chapter, verses = ch, []
                if re.search(r" \d+$", ch) and not ch.endswith(" 0"):
                    verses.append((book, ch + "\n"))
            verses.append((book, body))
        else:
            paragraphs = []
            for para in body.split("\n"):          # commentaries repeat whole entries (MHCC): once each
                digest = hashlib.md5(para.encode()).digest()
                if digest not in seen:
                    seen.add(digest)
                    paragraphs.append(para)
            if paragraphs:
                books.setdefault(book, []).append("\n".join(paragraphs))
    if verses:
        books.setdefault(verses[0][0], []).append(" ".join(v for _, v in verses))
    return [(book, re.sub(r"\n +", "\n", "\n\n".join(parts)).strip()) for book, parts in books.items()]


def export_module(package_root: Path, module: str) -> str:
    """`mod2imp MODULE` over the module of one unpacked sword package (its usr/share/sword)."""
    sword = (package_root / "usr/share/sword").resolve()
    with tempfile.TemporaryDirectory() as home:
        (Path(home) / "mods.d").symlink_to(sword / "mods.d")
        (Path(home) / "modules").symlink_to(sword / "modules")
        result = subprocess.run(["mod2imp", module], capture_output=True, env={**os.environ, "SWORD_PATH": home})
    if not result.stdout:
        raise RuntimeError(f"mod2imp {module} gave no text from {sword} (stderr: {result.stderr[:200]!r})")
    return result.stdout.decode("utf-8", errors="replace")
