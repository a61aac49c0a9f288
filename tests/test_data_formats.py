"""Each format the broad corpus reads, on a small fixture written for the test (tests/fixtures/formats)."""
import json
from pathlib import Path

from blt_core.data.languages import _poems, chatterbot, fortunes, label, language_code
from blt_core.data.packages import Package
from blt_core.data.prose import brown_text, dictd_entries, factbook_text, mail_body, unwrap, wordnet_glosses
from blt_core.data.sword import imp_to_text
from blt_core.data.text import (clean, cut, decode, group, html_to_text, looks_english, mallard_to_text, strip_roff,
                                translated_only)

FORMATS = Path(__file__).parent / "fixtures" / "formats"


def fixture(name: str) -> str:
    return (FORMATS / name).read_text(encoding="utf-8")


class FakePackages:
    """Packages whose files are the fixtures: `path` maps into a folder the test lays out."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, package: Package, *parts: str) -> Path:
        return package.folder(self.root).joinpath(*parts)


def test_brown_tagged_text_is_detokenised_by_paragraph():
    text = brown_text(fixture("brown_ck01"))
    assert text == ("The old ferry crossed the river at dawn. Nobody aboard hadn't slept; "
                    'the captain said "Hold fast".'
                    "\n\nIt was, he thought, a good morning (for once).")


def test_gcide_entries_lose_pronunciations_tags_and_braces():
    entries = dictd_entries(fixture("gcide.dict"), gcide=True)
    assert entries[0] == ("Ferry, n.; pl. Ferries. 1. A place where persons or things are carried across a river, "
                          "arm of the sea, lake, etc., in a ferryboat.")
    assert entries[1].startswith("It is a rule of law") and "[1913 Webster]" not in " ".join(entries)
    assert entries[2] == "Ferryboat, n. A boat for conveying passengers and goods across rivers."


def test_wordnet_gives_each_distinct_gloss_once():
    glosses = wordnet_glosses(fixture("wn.dict"))
    assert glosses == ["ferry: a boat that transports people or vehicles across a body of water and operates on a "
                       "regular schedule",
                       "ferry: transport by boat or aircraft",
                       'ferry: transport from one place to another; "ferry the children"']


def test_sword_bible_export_is_one_document_per_book_with_chapters():
    books = dict(imp_to_text(fixture("kjv.imp"), bible=True))
    assert list(books) == ["Genesis", "Exodus"]
    assert books["Genesis"] == ("The First Book of Moses, called Genesis\n\nGenesis 1\n In the beginning God created "
                                "the heaven and the earth. And the earth was without form, and void; and darkness "
                                "was upon the face of the deep.\n\nGenesis 2\n Thus the heavens and the earth were "
                                "finished, and all the host of them.").replace("\n ", "\n")
    assert books["Exodus"].endswith("Now these are the names of the children of Israel.")


def test_sword_commentary_keeps_a_repeated_entry_once():
    books = dict(imp_to_text(fixture("mhcc.imp"), bible=False))
    genesis = books["Genesis"]
    assert genesis.count("The first verse of the Bible") == 1 and "Darkness was upon the deep & the Spirit" in genesis
    assert books["Exodus"] == "The children of Israel multiplied in Egypt."


def test_html_keeps_text_and_pre_drops_head_nav_script():
    text = html_to_text(fixture("handbook_de.html"))
    assert text.split("\n") == ["Das Debian-Projekt", "", "Debian ist ein freies Betriebssystem.", "",
                                "The Debian project is a group of people who make a free operating system for "
                                "the world.", "", "apt-get  install  debian-handbook"]


def test_translated_only_drops_english_lines_and_repeats():
    english = {"Das Debian-Projekt"}                 # a heading the translation left as it was
    text = html_to_text(fixture("handbook_de.html")) + "\n\nDebian ist ein freies Betriebssystem."
    assert translated_only(text, english) == ("Debian ist ein freies Betriebssystem.\n\n"
                                              "apt-get  install  debian-handbook")
    assert looks_english("The Debian project is a group of people who make a free operating system")
    assert not looks_english("Le projet Debian est un groupe de personnes qui font un système libre")


def test_mallard_page_drops_info_and_markup():
    assert mallard_to_text(fixture("help_de.page")) == ("Mit einem Funknetzwerk verbinden\n\n"
                                                        "Klicken Sie auf Einstellungen & wählen Sie ein Netzwerk.")


def test_factbook_profile_reads_as_section_lines():
    assert factbook_text(json.loads(fixture("factbook_xx.json"))) == (
        "Introduction / Background: An island republic with a long coastline & many ferries.\n"
        "Geography / Area / total: 1,234 sq km")


def test_mail_keeps_subject_and_body_without_quotes_or_footer():
    assert mail_body((FORMATS / "ham.eml").read_bytes()) == ("Subject: The ferry timetable\nThe new timetable starts "
                                                             "on Monday, with an extra crossing at noon.\n"
                                                             "See you on board.")


def test_chinese_poems_are_titled_and_kept_once():
    poems = _poems(json.loads(fixture("poems.json")), set())
    assert poems == ["靜夜思 李白\n床前明月光，疑是地上霜。\n舉頭望明月，低頭思故鄉。",
                     "春曉 孟浩然\n春眠不覺曉，處處聞啼鳥。\n夜來風雨聲，花落知多少。"]


def test_fortunes_and_chatterbot_files(tmp_path):
    packages = FakePackages(tmp_path)
    games = packages.path(Package("apt", "fortunes-de"), "usr/share/games/fortunes/de")
    games.mkdir(parents=True)
    (games / "ferries").write_bytes((FORMATS / "fortunes_xx").read_bytes())
    (games / "ferries.dat").write_bytes(b"\x00\x02index")
    (doc,) = fortunes("de")(packages)
    assert (doc.id, doc.label) == ("fortunes/de/ferries", "de")
    assert clean(doc.text) == "A ferry is a bridge that floats.\n\nTime and tide wait for no man.\n\t-- Proverb"

    data = packages.path(Package("pip", "chatterbot-corpus", "1.3.3"), "chatterbot_corpus/data/german")
    data.mkdir(parents=True)
    (data / "ferries.yml").write_bytes((FORMATS / "chatterbot_xx.yml").read_bytes())
    (doc,) = chatterbot(packages)
    assert doc.label == "de" and doc.text == ("When does the ferry leave?\nAt noon.\n\n"
                                              "Is it cold on deck?\nTake a coat.\nThank you.")


def test_language_tags_and_labels():
    tags = ("de-DE", "pt_BR", "zh-tw", "sr@latin", "german")
    assert [language_code(t) for t in tags] == ["de", "pt", "zh", "sr", "de"]
    assert label("ja-JP") == "ja" and label("xh") == "other"


def test_text_helpers():
    assert decode(b"caf\xc3\xa9\r\nna\xefve \x01x\n") == "café\nnaïve x"       # a cp1252 line, a control char
    assert clean("a  \n\n\n\nb\ufeff\t\n") == "a\n\nb"
    assert unwrap("one\ntwo\n\nthree") == "one two\n\nthree"
    assert strip_roff('.\\" comment\n.SH NAME\nls \\fBlist\\fR\n') == "NAME\nls list"
    pieces = cut("\n\n".join(["x" * 40] * 10), 100)
    assert all(len(p) <= 100 for p in pieces) and "\n\n".join(pieces) == "\n\n".join(["x" * 40] * 10)
    assert cut("y" * 30 + "\n" + "y" * 30, 40) == ["y" * 30, "y" * 30]         # a long paragraph cut at lines
    assert list(group(["aa", "bb", "cc"], 5)) == ["aa", "bb", "cc"] and list(group(["a", "b"], 9)) == ["a\n\nb"]
