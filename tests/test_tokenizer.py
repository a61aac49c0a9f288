import pytest
from hypothesis import given, strategies as st

from blt_core import ByteTokenizer
from blt_core.tokenizer import BOS_ID, EOS_ID, PAD_ID

tok = ByteTokenizer()
MULTILINGUAL = ["Hello, world!", "Grüße aus Köln", "Привет, мир", "مرحبا بالعالم", "नमस्ते दुनिया",
                "你好，世界", "こんにちは", "🙂👍🏽 emoji", "tab\tnew\nline", ""]


def test_known_ids_from_reference():
    assert tok.encode("my name is") == [1, 113, 125, 36, 114, 101, 113, 105, 36, 109, 119]


def test_flags():
    assert tok.encode("a", add_bos=False) == [97 + 4]
    assert tok.encode("a", add_eos=True) == [BOS_ID, 101, EOS_ID]
    assert ByteTokenizer(add_bos=False, add_eos=True).encode(b"\x00") == [4, EOS_ID]


@pytest.mark.parametrize("text", MULTILINGUAL)
def test_multilingual_round_trip(text):
    ids = tok.encode(text)
    assert len(ids) == len(text.encode()) + 1 and all(0 <= i < 260 for i in ids)
    assert tok.decode(ids) == text


@given(st.binary(max_size=300))
def test_random_bytes_round_trip(data):
    ids = tok.encode(data, add_bos=True, add_eos=True)
    assert tok.decode_bytes(ids) == data
    assert tok.decode(ids) == data.decode("utf-8", errors="replace")  # never raises


def test_invalid_utf8_is_replaced():
    assert tok.decode(tok.encode(b"ok\xff\xc3")) == "ok\ufffd\ufffd"


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="character 1"):
        tok.encode("a\ud800b")
    with pytest.raises(ValueError, match=r"\[260\]"):
        tok.decode([5, 260])
    with pytest.raises(TypeError, match="int"):
        tok.encode(12)


def test_batch_encode_pads_right():
    rows, lengths = tok.batch_encode(["ab", "abcd"])
    assert lengths == [3, 5]
    assert rows[0] == [1, 101, 102, PAD_ID, PAD_ID] and len(rows[1]) == 5
