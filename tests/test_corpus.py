"""blt_core.corpus on the shipped model: bits per byte equal blt_core.eval's over the same
windows, patch sizes cover every byte, passages are ranked by their own bytes' bits."""
from __future__ import annotations

import numpy as np
import pytest

from blt_core import bpe, corpus
from blt_core.data import ByteCorpus
from blt_core.default_model import load_model
from blt_core.eval import bits_per_byte
from blt_core.patching import PatchingParams

from webapp_helpers import REPO, SHIPPED_MODEL

HELDOUT = REPO / "tests" / "fixtures" / "corpus" / "heldout.bin"
N = 3000          # bytes: six windows, the last one short


@pytest.fixture(scope="module")
def model():
    return load_model(str(SHIPPED_MODEL), device="cpu").model


@pytest.fixture(scope="module")
def text():
    return HELDOUT.read_bytes()[:N].decode("utf-8", errors="ignore")


@pytest.fixture(scope="module")
def report(model, text):
    seen = []
    out = corpus.analyse(model, text, progress=lambda done, total: seen.append((done, total)))
    out["_progress"] = seen
    return out


def test_bits_per_byte_equal_blt_core_eval(model, text, report, tmp_path):
    path = tmp_path / "text.bin"
    path.write_bytes(text.encode("utf-8"))
    expected = bits_per_byte(model, ByteCorpus(path, corpus.WINDOW_BYTES), "cpu")
    assert expected["bytes"] == report["bytes"]
    assert report["bits_per_byte"] == pytest.approx(expected["bpb"], rel=1e-5)


def test_patches_cover_every_byte_once(report, model):
    sizes = {int(k): v for k, v in report["patch_size_histogram"].items()}
    assert sum(size * count for size, count in sizes.items()) == report["bytes"]
    assert sum(sizes.values()) == report["patches"]
    assert report["bytes_per_patch"] == pytest.approx(report["bytes"] / report["patches"])
    assert report["patching"] == {"mode": "entropy", "threshold": pytest.approx(model.config.patching_threshold),
                                  "max_patch_length": None, "patch_size": 4}


def test_progress_after_every_window(report):
    n = report["bytes"]
    assert report["_progress"] == [(min(end, n), n) for end in range(corpus.WINDOW_BYTES, n + 512, 512)]


def test_passages_are_ranked_by_their_bits(model, text, report):
    data = text.encode("utf-8")
    bits, _ = _run(corpus.byte_losses(model, data))
    best, worst = report["passages"]["most_predictable"], report["passages"]["least_predictable"]
    assert len(best) == len(worst) == 5
    for row in best + worst:
        assert row["bits_per_byte"] == pytest.approx(float(bits[row["start"]:row["start"] + row["length"]].mean()),
                                                     rel=1e-5)
        assert row["text"].encode("utf-8") == data[row["start"]:row["start"] + row["length"]]
        assert 200 <= row["length"] < 204                   # cut at a character boundary
    assert [r["bits_per_byte"] for r in best] == sorted(r["bits_per_byte"] for r in best)
    assert best[-1]["bits_per_byte"] <= worst[-1]["bits_per_byte"]
    assert [r["bits_per_byte"] for r in worst] == sorted((r["bits_per_byte"] for r in worst), reverse=True)


def test_token_counts_are_the_encoders(text, report):
    for row in report["tokenizers"]:
        n = len(bpe.encoding(row["name"]).encode(text).ids)
        assert row["tokens"] == n and row["bytes_per_token"] == pytest.approx(report["bytes"] / n)


def test_passage_cuts_keep_characters_whole():
    text = "é" * 300 + "😀" * 100
    data = text.encode("utf-8")
    out = corpus.passages(data, np.zeros(len(data), dtype=np.float32), 101, 50)
    rows = out["most_predictable"]
    assert all(r["text"].encode("utf-8") == data[r["start"]:r["start"] + r["length"]] for r in rows)
    assert sum(r["length"] for r in rows) == len(data)       # every passage is long enough here


def test_other_patching_and_empty_text(model):
    out = corpus.analyse(model, "abc def ghi " * 50, patching=PatchingParams(mode="static", patch_size=3))
    # 600 bytes: windows of 512 (170 x 3 + 2) and 88 (29 x 3 + 1), each patched from its start
    assert out["patch_size_histogram"] == {"1": 1, "2": 1, "3": 199}
    with pytest.raises(ValueError, match="empty"):
        corpus.analyse(model, "")


def _run(steps):
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            return finished.value
