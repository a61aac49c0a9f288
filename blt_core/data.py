"""Training corpora from public text that installs offline, and byte windows for training.

    python -m blt_core.data prepare --out data/corpora        # needs the Debian packages below

Three corpora, each a folder with `train.bin` and `heldout.bin`: the documents' UTF-8 bytes, each
followed by the byte 0xFF (never valid in UTF-8), which reads back as EOS. A document goes to the
held-out split when the first byte of the SHA-256 of its source path is < 5 (about 2 %; 10 % for
the short iso-codes chunks), so the split is stable however often the corpora are rebuilt; the
held-out documents are also written per language (`heldout_<lang>.bin`). `manifest.json` records every source with
its package, licence and size; `data/SOURCES.md` is its human summary.

    english       the Python 3.11 documentation sources (python3.11-doc, reStructuredText prose)
    code          the Python standard library's own source (ships with Python)
    multilingual  manual pages in German, French, Spanish, Russian, Japanese and Chinese
                  (manpages-de/-fr/-es/-ru/-ja/-zh), and the iso-codes translations of country,
                  language, currency and script names into Arabic, Hindi, Greek, Hebrew, Korean,
                  Thai, Bengali, Tamil, Ukrainian and Persian: parallel text, each English name
                  followed by its translation

Debian packages: python3.11-doc manpages-de manpages-fr manpages-es manpages-ru manpages-ja
manpages-zh iso-codes (`apt-get install ...`). English prose is limited to the ~11 MB of the
Python documentation: no larger English prose collection installs offline here as plain text
(the Bible packages hold it in program-specific compressed formats).
"""
from __future__ import annotations

import argparse
import gettext
import gzip
import hashlib
import json
import re
import sys
import sysconfig
from pathlib import Path

import numpy as np
import torch

from .tokenizer import BOS_ID, EOS_ID, OFFSET

SEPARATOR = 0xFF
HELDOUT_BYTE = 5        # sha256(path)[0] < 5 -> held out (5/256 ~ 2 %)
ISO_HELDOUT_BYTE = 26   # iso-codes chunks: 26/256 ~ 10 %, so each language has some held-out text
MAN_LANGUAGES = {"de": "German", "fr": "French", "es": "Spanish", "ru": "Russian", "ja": "Japanese",
                 "zh_CN": "Chinese (Simplified)"}
LOCALE_LANGUAGES = {"ar": "Arabic", "hi": "Hindi", "el": "Greek", "he": "Hebrew", "ko": "Korean",
                    "th": "Thai", "bn": "Bengali", "ta": "Tamil", "uk": "Ukrainian", "fa": "Persian"}
SOURCES = {
    "python3.11-doc": "PSF License 2.0 (Python documentation)",
    "python-stdlib": "PSF License 2.0 (CPython source)",
    "manpages-l10n": "GPL-3+ (translations) over the man-pages licences of each page",
    "iso-codes": "LGPL-2.1+",
}


# ------------------------------------------------------------------------------- documents
def english_documents():
    root = Path("/usr/share/doc/python3.11/html/_sources")
    for f in sorted(root.rglob("*.rst.txt")):
        yield str(f), "python3.11-doc", f.read_text(errors="replace")


def code_documents():
    root = Path(sysconfig.get_paths()["stdlib"])
    for f in sorted(root.rglob("*.py")):
        if "site-packages" in f.parts or "test" in f.parts[len(root.parts):len(root.parts) + 1]:
            continue
        yield str(f), "python-stdlib", f.read_text(errors="replace")


_ROFF = [(re.compile(r"^\.\\\".*$", re.M), ""), (re.compile(r"^\.(SH|SS)\s+", re.M), "\n"),
         (re.compile(r"^\.[A-Za-z]+\s?", re.M), ""), (re.compile(r"\\f[BIRP]|\\\(.{2}|\\[&-]|\\e"), ""),
         (re.compile(r"\n{3,}"), "\n\n")]


def strip_roff(text: str) -> str:
    """Man page source -> readable text (macros and font escapes removed)."""
    for pattern, repl in _ROFF:
        text = pattern.sub(repl, text)
    return text.strip()


def multilingual_documents():
    for lang in MAN_LANGUAGES:
        for f in sorted(Path("/usr/share/man", lang).rglob("*.gz")):
            try:
                yield str(f), "manpages-l10n", strip_roff(gzip.decompress(f.read_bytes()).decode("utf-8"))
            except (UnicodeDecodeError, OSError, EOFError):
                continue
    for lang in LOCALE_LANGUAGES:
        for f in sorted(Path("/usr/share/locale", lang, "LC_MESSAGES").glob("iso_*.mo")):
            try:
                with open(f, "rb") as fh:
                    catalog = gettext.GNUTranslations(fh)._catalog
            except (OSError, UnicodeDecodeError):
                continue
            entries = [f"{k}\n{v}" for k, v in catalog.items() if isinstance(k, str) and k and isinstance(v, str)]
            for i in range(0, len(entries), 10):   # chunks of 10 names, so every language has held-out text
                yield f"{f}#{i // 10}", "iso-codes", "\n\n".join(entries[i:i + 10])


CORPORA = {"english": english_documents, "code": code_documents, "multilingual": multilingual_documents}


SCRIPTS = {"en": "Latin", "python": "code", "de": "Latin", "fr": "Latin", "es": "Latin", "ru": "Cyrillic",
           "ja": "Kana + Han", "zh_CN": "Han", "ar": "Arabic", "hi": "Devanagari", "el": "Greek", "he": "Hebrew",
           "ko": "Hangul", "th": "Thai", "bn": "Bengali", "ta": "Tamil", "uk": "Cyrillic", "fa": "Arabic"}


def language_of(corpus: str, path: str) -> str:
    """The language (or 'python') of a document, from its corpus and source path."""
    if corpus == "english":
        return "en"
    if corpus == "code":
        return "python"
    parts = Path(path).parts                 # /usr/share/man/<lang>/... or /usr/share/locale/<lang>/...
    return parts[4]


def is_heldout(path: str, source: str = "") -> bool:
    """Stable split: about 2 % of documents (10 % of the short iso-codes chunks) are held out."""
    return hashlib.sha256(path.encode()).digest()[0] < (ISO_HELDOUT_BYTE if source == "iso-codes" else HELDOUT_BYTE)


def prepare(out: Path, max_bytes: int | None = None) -> dict:
    """Write every corpus under `out`; returns the manifest."""
    manifest = {}
    for name, documents in CORPORA.items():
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        stats = {"train": 0, "heldout": 0, "documents": 0, "sources": {}, "heldout_by_language": {}}
        by_language = {}                         # held-out documents again, one file per language
        with open(folder / "train.bin", "wb") as train, open(folder / "heldout.bin", "wb") as heldout:
            for path, source, text in documents():
                data = text.encode("utf-8")
                if not data.strip():
                    continue
                split = "heldout" if is_heldout(path, source) else "train"
                (heldout if split == "heldout" else train).write(data + bytes([SEPARATOR]))
                if split == "heldout":
                    lang = language_of(name, path)
                    by_language.setdefault(lang, bytearray()).extend(data + bytes([SEPARATOR]))
                stats[split] += len(data) + 1
                stats["documents"] += 1
                stats["sources"][source] = stats["sources"].get(source, 0) + len(data)
                if max_bytes and stats["train"] + stats["heldout"] >= max_bytes:
                    break
        for lang, data in by_language.items():
            (folder / f"heldout_{lang}.bin").write_bytes(data)
            stats["heldout_by_language"][lang] = len(data)
        if stats["documents"] == 0:
            raise SystemExit(f"corpus {name!r}: no documents found; install the Debian packages named in "
                             f"blt_core/data.py (apt-get install python3.11-doc manpages-de ...)")
        manifest[name] = stats
        print(f"{name}: {stats['documents']} documents, {stats['train']:,} train bytes, "
              f"{stats['heldout']:,} held-out bytes", file=sys.stderr)
    (out / "manifest.json").write_text(json.dumps({"licences": SOURCES, "corpora": manifest}, indent=2))
    return manifest


# ------------------------------------------------------------------------------- training data
class ByteCorpus:
    """Random windows of a .bin split: each row is BOS + seq_len bytes (0xFF read as EOS), as ids."""

    def __init__(self, path, seq_len: int, seed: int = 0):
        self.data = np.memmap(path, dtype=np.uint8, mode="r")
        if len(self.data) <= seq_len:
            raise ValueError(f"{path} holds {len(self.data)} bytes, fewer than seq_len + 1 = {seq_len + 1}")
        self.seq_len = seq_len
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.data)

    def to_ids(self, chunk: np.ndarray) -> torch.Tensor:
        ids = torch.from_numpy(chunk.astype(np.int64)) + OFFSET
        ids[torch.from_numpy(chunk == SEPARATOR)] = EOS_ID
        return ids

    def batch(self, batch_size: int) -> torch.Tensor:
        """(batch_size, seq_len + 1) ids: BOS then seq_len bytes from a random offset."""
        starts = self.rng.integers(0, len(self.data) - self.seq_len, batch_size)
        rows = [self.to_ids(np.asarray(self.data[s:s + self.seq_len])) for s in starts]
        bos = torch.full((batch_size, 1), BOS_ID, dtype=torch.long)
        return torch.cat([bos, torch.stack(rows)], dim=1)

    def sequential(self, max_bytes: int | None = None):
        """Consecutive non-overlapping windows covering the split (evaluation), each (1, seq_len+1)."""
        end = len(self.data) if max_bytes is None else min(len(self.data), max_bytes)
        for s in range(0, end - 1, self.seq_len):
            chunk = np.asarray(self.data[s:min(s + self.seq_len, end)])
            yield torch.cat([torch.tensor([BOS_ID]), self.to_ids(chunk)])[None]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m blt_core.data", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="build the corpora")
    p.add_argument("--out", default="data/corpora")
    p.add_argument("--max-bytes", type=int, help="stop each corpus after this many bytes")
    args = ap.parse_args(argv)
    prepare(Path(args.out), args.max_bytes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
