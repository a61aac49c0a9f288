"""The project's first three corpora, read from installed Debian packages (the shipped model's data).

    python -m blt_core.data prepare --corpora english code multilingual --out data/corpora

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
manpages-zh iso-codes (`apt-get install ...`). English here is only the ~11 MB of the Python
documentation; the broad corpus (`prepare` without `--corpora`) is the larger, general one.
"""
from __future__ import annotations

import gettext
import gzip
import hashlib
import json
import sys
import sysconfig
from pathlib import Path

from .text import strip_roff
from .windows import SEPARATOR

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


def prepare(out: Path, max_bytes: int | None = None, names=None) -> dict:
    """Write every corpus (or those in `names`) under `out`; returns the manifest."""
    manifest = {}
    for name, documents in CORPORA.items():
        if names is not None and name not in names:
            continue
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
                             f"blt_core/data/small.py (apt-get install python3.11-doc manpages-de ...)")
        manifest[name] = stats
        print(f"{name}: {stats['documents']} documents, {stats['train']:,} train bytes, "
              f"{stats['heldout']:,} held-out bytes", file=sys.stderr)
    (out / "manifest.json").write_text(json.dumps({"licences": SOURCES, "corpora": manifest}, indent=2))
    return manifest


# The section of data/SOURCES.md about these corpora (measured on the build of 2026-11-23).
SOURCES_MD = """\
## The first three corpora (english, code, multilingual)

The shipped model's data, read from installed Debian packages (`blt_core/data/small.py`).
Rebuild with `python -m blt_core.data prepare --corpora english code multilingual --out data/corpora` after
`apt-get install python3.11-doc manpages-de manpages-fr manpages-es manpages-ru manpages-ja manpages-zh iso-codes`
(Debian 12). Each corpus folder holds `train.bin` and `heldout.bin` (documents' UTF-8 bytes, each
followed by 0xFF); a document is held out when the first byte of the SHA-256 of its source path
is below 5 (about 2 %; below 26, about 10 %, for the short iso-codes chunks of 10 names), so the
split never changes between rebuilds. Held-out documents are also written per language
(`heldout_<lang>.bin`) for the per-language evaluation. Sizes below are from the
build of 2026-11-23 (`data/corpora/manifest.json` is written by every build).

| corpus | source (package, version) | licence | text bytes | train / held-out bytes (documents) |
|---|---|---|---|---|
| english | Python 3.11 documentation sources, `/usr/share/doc/python3.11/html/_sources/**/*.rst.txt` (python3.11-doc 3.11.2-6+deb12u9) | PSF License 2.0 | 11.0 MB | 10,918,395 / 130,377 (497) |
| code | CPython 3.11.7 standard library `*.py` (ships with Python; tests excluded) | PSF License 2.0 | 14.4 MB | 14,128,882 / 273,528 (963) |
| multilingual | manual pages in German, French, Spanish, Russian, Japanese, Chinese (manpages-de/-fr/-es/-ru 4.18.1-1, manpages-ja 0.5.0.0.20221215, manpages-zh 1.6.4.0-1), roff markup stripped | GPL-3+ translations of pages under their own free licences | 44.3 MB | 45,907,597 / 1,184,987 (12,058 documents, with the next row) |
| multilingual | iso-codes 4.15.0-1 translations of country, language, currency and script names into Arabic, Hindi, Greek, Hebrew, Korean, Thai, Bengali, Tamil, Ukrainian, Persian (parallel: English name, then translation) | LGPL-2.1+ | 2.8 MB | (see above) |

Scripts in the multilingual corpus: Latin, Cyrillic, Han, Kana, Arabic, Devanagari, Greek, Hebrew,
Hangul, Thai, Bengali, Tamil.

What limits it: English prose is only the ~11 MB of the Python documentation (technical prose).
The public-domain Bible packages (bible-kjv-text, sword-text-web) store their text in
program-specific compressed formats that need extra tools to extract, and no larger plain-text
English collection installs from the reachable registries. The man pages are the only sizeable
running text in other languages; the iso-codes part is short names, not sentences.

Held-out bytes per language (build of 2026-11-23): en 130,377; python 273,528; de 367,289;
ru 181,728; uk 112,307; fr 109,550; ja 104,943; zh_CN 101,436; ta 66,494; th 32,484; es 31,840;
bn 20,914; el 16,028; ko 9,414; fa 8,289; he 8,193; hi 7,553; ar 6,525. The iso-codes languages
(ar, hi, fa, he, ko, el, bn, th, ta) have only a few kB each: their per-language figures are noisy.
"""
