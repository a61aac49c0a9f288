"""Plain text out of the formats the packages ship: HTML, GNOME Mallard, man-page roff, and bytes of
unknown encoding; and the cutting of long texts into documents of a bounded size."""
from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BLANK_RUNS = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


def decode(raw: bytes) -> str:
    """Bytes -> text: UTF-8 line by line, a line that is not UTF-8 read as cp1252 (else latin-1);
    CRLF made LF, control characters other than tab and newline dropped."""
    lines = []
    for line in raw.replace(b"\r\n", b"\n").split(b"\n"):
        try:
            s = line.decode("utf-8")
        except UnicodeDecodeError:
            try:
                s = line.decode("cp1252")
            except UnicodeDecodeError:
                s = line.decode("latin-1")
        lines.append(s)
    return clean("\n".join(lines))


def clean(text: str) -> str:
    """Control characters (but tab and newline) removed, byte-order mark dropped, blank runs squeezed."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", ""))
    return _BLANK_RUNS.sub("\n\n", _TRAILING_SPACE.sub("\n", text)).strip()


def paragraphs(text: str) -> list[str]:
    """Blocks separated by blank lines."""
    return [p for p in text.split("\n\n") if p.strip()]


def cut(text: str, max_bytes: int) -> list[str]:
    """`text` as consecutive pieces of at most about `max_bytes` UTF-8 bytes, cut between
    paragraphs (between lines inside a longer paragraph)."""
    if len(text.encode()) <= max_bytes:
        return [text]
    units = []
    for block in paragraphs(text):
        units.extend([block] if len(block.encode()) <= max_bytes else group(block.split("\n"), max_bytes, "\n"))
    return list(group(units, max_bytes))


def group(units, max_bytes: int, separator: str = "\n\n"):
    """Consecutive short texts (dictionary entries, poems) joined into documents of about `max_bytes`."""
    current, size = [], 0
    for unit in units:
        if current and size + len(unit.encode()) > max_bytes:
            yield separator.join(current)
            current, size = [], 0
        current.append(unit)
        size += len(unit.encode()) + len(separator)
    if current:
        yield separator.join(current)


class _HTMLText(HTMLParser):
    BLOCK = set("p div br li ul ol dl dt dd h1 h2 h3 h4 h5 h6 tr td th table section article pre blockquote title "
                "caption figcaption hr header footer".split())
    SKIP = {"script", "style", "head", "nav", "noscript", "svg", "math"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out, self.skip, self.pre = [], 0, 0

    def handle_starttag(self, tag, attrs):
        self.skip += tag in self.SKIP
        self.pre += tag == "pre"
        if tag in self.BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.skip:
            self.skip -= 1
        if tag == "pre" and self.pre:
            self.pre -= 1
        if tag in self.BLOCK:
            self.out.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data if self.pre else re.sub(r"\s+", " ", data))


def html_to_text(markup: str) -> str:
    """HTML or XHTML -> text: block elements on their own lines, <pre> kept, head/script/nav dropped."""
    parser = _HTMLText()
    parser.feed(markup)
    parser.close()
    lines = [line.strip() for line in "".join(parser.out).split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


_MALLARD_BLOCKS = re.compile(r"</?(?:title|p|item|td|tr|section|page|note|list|steps|terms|tree|table|screen|code|"
                             r"desc|subtitle|media|example|quote|synopsis|comment)\b[^>]*>")


def mallard_to_text(markup: str) -> str:
    """A GNOME help .page -> text (the <info> metadata and credits dropped)."""
    s = re.sub(r"<info\b.*?</info>", "", markup, flags=re.S)
    s = re.sub(r"<\?.*?\?>|<!--.*?-->", "", s, flags=re.S)
    s = re.sub(r"<[^>]+>", "", _MALLARD_BLOCKS.sub("\n", s))
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in html.unescape(s).split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


_ROFF = [(re.compile(r"^\.\\\".*$", re.M), ""), (re.compile(r"^\.(SH|SS)\s+", re.M), "\n"),
         (re.compile(r"^\.[A-Za-z]+\s?", re.M), ""), (re.compile(r"\\f[BIRP]|\\\(.{2}|\\[&-]|\\e"), ""),
         (re.compile(r"\n{3,}"), "\n\n")]


def strip_roff(text: str) -> str:
    """Man page source -> readable text (macros and font escapes removed)."""
    for pattern, repl in _ROFF:
        text = pattern.sub(repl, text)
    return text.strip()


_ENGLISH_WORDS = frozenset("the and of to is that with for this are be by it as on from or can you which".split())


def looks_english(line: str) -> bool:
    """A line of six or more words, at least a fifth of them common English function words: an
    untranslated line in a translation (German or French lines seldom reach one in twenty)."""
    words = re.findall(r"[a-z]+", line.lower())
    return len(words) >= 6 and 5 * sum(w in _ENGLISH_WORDS for w in words) >= len(words)


def translated_only(text: str, english_lines: set[str], seen: set[str] | None = None) -> str:
    """The lines of a translation that are not lines of the English edition, nor repeats
    (navigation, headers), nor English (some translations are mostly untranslated English, with
    translated cross-references). `seen` carries the repeats across the files of one translation."""
    seen = set() if seen is None else seen
    out = []
    for line in text.split("\n"):
        s = line.strip()
        if not s:
            out.append("")
        elif s not in english_lines and s not in seen and not looks_english(s):
            seen.add(s)
            out.append(s)
    return _BLANK_RUNS.sub("\n\n", "\n".join(out)).strip()
