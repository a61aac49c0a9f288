"""blt_core.bpe against tiktoken itself (tests/bpe_reference.py: the same vocabulary files, loaded
by tiktoken's own loader under the sha256 it pins, and tiktoken's own encoding definitions);
nothing is downloaded. Token ids must be equal on every text."""
from __future__ import annotations

import lzma
import time
from pathlib import Path

import pytest
import tiktoken
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blt_core import bpe
from bpe_reference import tiktoken_encodings

REPO = Path(__file__).resolve().parents[1]
NAMES = list(bpe.VOCABULARIES)

TEXTS = [
    "Hello, world!", "The river was quiet that morning. A heron stood in the shallows.",
    "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    "今天天气很好，我们一起去公园散步吧。", "اللغة العربية من أقدم اللغات السامية وأكثرها انتشارا.",
    "Pizza night 🍕🍕 then rockets 🚀 and a late coder 👩‍💻 under the moon 🌙✨ 👍🏽",
    "Teh qiuck borwn fox jmups ovre teh lazzy dgo, agian and agian.",
    "I'M HERE, she's gone; THEY'LL see. We'd've ſ's", "Straße, naïve café, Ελληνικά, русский, हिन्दी, 한국어, ไทย",
    "  leading spaces\n\n\n\ttabs   trailing   ", "\r\n\r\n  \n \n", "x" + " " * 300 + "y", "1234567890 3.14159 1e-9 ٣٤٥",
    "<|endoftext|> is plain text here", "tokens/with/slashes and\\backslashes\n/// //", "a" * 5000,
    "🙂" * 200, "\u00a0non-breaking\u2003em-space\u3000ideographic", "e\u0301 combining \u0915\u093f marks",
]


@pytest.fixture(scope="module")
def reference() -> dict[str, tiktoken.Encoding]:
    return tiktoken_encodings()


def test_shipped_files_are_tiktokens_own(reference):
    for name in NAMES:
        ours = bpe.encoding(name)
        assert ours.ranks == reference[name]._mergeable_ranks
        assert len(ours.ranks) == bpe.VOCABULARIES[name].n_tokens


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_ids_equal_tiktoken(reference, name, text):
    assert bpe.encoding(name).encode(text).ids == reference[name].encode_ordinary(text)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("path", ["README.md", "tests/fixtures/corpus/heldout.bin", "static/js/explore.js"])
def test_ids_equal_tiktoken_on_files(reference, name, path):
    text = (REPO / path).read_bytes()[:60_000].decode("utf-8", errors="ignore")
    assert bpe.encoding(name).encode(text).ids == reference[name].encode_ordinary(text)


SCRIPTS = st.one_of(st.characters(min_codepoint=0x20, max_codepoint=0x7E),           # ASCII
                    st.sampled_from(" \n\t\r\u00a0\u3000'"),
                    st.characters(min_codepoint=0xA0, max_codepoint=0x2FFF),          # Latin .. symbols
                    st.characters(min_codepoint=0x3000, max_codepoint=0x9FFF),        # CJK
                    st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF))      # emoji


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(SCRIPTS, max_size=60))
def test_ids_equal_tiktoken_on_random_text(reference, name, text):
    # unassigned in Python 3.11's Unicode 14 (not printable) may be letters to tiktoken (blt_core/bpe.py)
    text = "".join(ch for ch in text if ch.isprintable() or ch in "\n\t\r")
    assert bpe.encoding(name).encode(text).ids == reference[name].encode_ordinary(text)


@pytest.mark.parametrize("name", NAMES)
def test_spans_cover_the_text(name):
    text = TEXTS[5] + TEXTS[3]
    tokens = bpe.encoding(name).encode(text)
    data = text.encode("utf-8")
    assert tokens.starts[0] == 0 and sum(tokens.lengths) == len(data)
    assert all(s + n == t for s, n, t in zip(tokens.starts, tokens.lengths, tokens.starts[1:]))
    ranks = {rank: token for token, rank in bpe.encoding(name).ranks.items()}
    assert b"".join(ranks[i] for i in tokens.ids) == data
    assert bpe.encoding(name).count(text) == len(tokens.ids)


def test_one_long_piece_is_not_quadratic(reference):
    text = "a" * 200_000                         # one pre-token of 200 kB
    t0 = time.perf_counter()
    ids = bpe.encoding("cl100k_base").encode(text).ids
    assert time.perf_counter() - t0 < 10
    assert ids == reference["cl100k_base"].encode_ordinary(text)


def test_a_file_that_is_not_tiktokens_is_refused(tmp_path):
    vocab = bpe.VOCABULARIES["r50k_base"]
    raw = lzma.decompress((bpe.VOCAB_DIR / "r50k_base.tiktoken.xz").read_bytes())
    (tmp_path / "r50k_base.tiktoken.xz").write_bytes(lzma.compress(raw.replace(b"IQ== 0", b"Ig== 0")))
    with pytest.raises(bpe.VocabularyError, match="is not tiktoken's r50k_base: sha256"):
        bpe.load_ranks(vocab, tmp_path)
    with pytest.raises(bpe.VocabularyError, match="cannot read vocabulary"):
        bpe.load_ranks(vocab, tmp_path / "missing")


def test_unknown_tokenizer():
    with pytest.raises(ValueError, match="unknown tokenizer 'gpt5'"):
        bpe.encoding("gpt5")
