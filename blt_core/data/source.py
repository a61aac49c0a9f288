"""What a source of the broad corpus is: the packages it reads, its licence, how it turns them into
documents, and how much of it the corpus takes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from .packages import Package, Packages


@dataclass(frozen=True)
class Document:
    id: str                  # stable within its source (a path, a speech, a chapter): decides the split
    text: str
    label: str | None = None  # held-out file it counts for ("de", "code_go"); None: the source's label


@dataclass(frozen=True)
class Source:
    name: str
    packages: tuple[Package, ...]
    licence: str
    label: str                                   # "english_prose", "code_go", "de", or "multilingual"
    documents: Callable[[Packages], Iterable[Document]]
    what: str                                    # one line for SOURCES.md: what the text is
    left_out: str = ""                           # what of the package is not taken, and why
    budget: int | None = None                    # sample: documents taken in hash order up to this many bytes
    unseen: bool = False                         # never trained on: all of it is heldout_unseen_<label>.bin
    unseen_budget: int = 0                       # sampled sources: bytes of the untaken rest kept as unseen text
    heldout_byte: int = 5                        # held out when sha256(id)[0] < this (5/256: about 2 %)
    dedupe: str = "paragraph"                    # or "document": code, where a paragraph is not a unit
    tools: tuple[str, ...] = field(default_factory=tuple)   # programs it runs (mod2imp)

