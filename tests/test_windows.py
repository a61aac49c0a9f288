"""Evaluation windows of a .bin split (blt_core/data/windows.py), and the spread sample they give
`python -m blt_core.eval --spread` and `python -m blt_core.experiments languages`."""
import json
import math

import numpy as np
import pytest
import torch

from blt_core.data import SEPARATOR, ByteCorpus
from blt_core.default_model import SHIPPED_DIR
from blt_core.tokenizer import BOS_ID, EOS_ID, OFFSET

def split_of(tmp_path, size: int, seed: int = 0):
    """A split of `size` random bytes below 0xFF (so any 64 of them are found at one offset only)."""
    data = np.random.default_rng(seed).integers(0, SEPARATOR, size, dtype=np.uint8).tobytes()
    path = tmp_path / "x.bin"
    path.write_bytes(data)
    return path, data


def offsets(windows, data: bytes) -> list[int]:
    """Where each window's bytes (after BOS) start in the split."""
    found = []
    for w in windows:
        found.append(data.find(bytes((w[0, 1:] - OFFSET).tolist())))
    return found


@pytest.mark.parametrize("size, seq_len, max_bytes", [(10_000, 64, 1000), (10_000, 64, 64), (10_000, 100, 3050),
                                                     (5_000, 256, 4_700), (100_003, 1024, 20_000)])
def test_spread_windows_cover_the_file_without_overlap(tmp_path, size, seq_len, max_bytes):
    path, data = split_of(tmp_path, size)
    windows = list(ByteCorpus(path, seq_len).spread(max_bytes))
    n = math.ceil(max_bytes / seq_len)
    assert len(windows) == n and all(w.shape == (1, seq_len + 1) for w in windows)
    starts = offsets(windows, data)
    assert starts[0] == 0 and -1 not in starts
    if n > 1:
        assert starts[-1] + seq_len == size                                    # the last window ends the file
        assert all(b - a >= seq_len for a, b in zip(starts, starts[1:]))       # in order, none overlapping
        gaps = np.diff(starts)
        assert gaps.max() - gaps.min() <= 1                                    # evenly spaced


@pytest.mark.parametrize("max_bytes", [None, 5_000, 9_999, 4_500])
def test_spread_is_sequential_when_its_windows_would_cover_the_file(tmp_path, max_bytes):
    path, _ = split_of(tmp_path, 5_000)
    corpus = ByteCorpus(path, 1024)                       # 4_500 -> 5 windows of 1024 bytes > 5_000: all of it
    spread, sequential = list(corpus.spread(max_bytes)), list(corpus.sequential())
    assert len(spread) == len(sequential) == 5
    assert all(torch.equal(a, b) for a, b in zip(spread, sequential))
    assert sum(w.shape[1] - 1 for w in spread) == 5_000


def test_spread_windows_start_with_bos_and_read_separators_as_eos(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes((b"abc" + bytes([SEPARATOR])) * 100)                # 400 bytes, a document every 4
    windows = list(ByteCorpus(path, 8).spread(40))
    assert len(windows) == 5
    for w in windows:
        assert w[0, 0] == BOS_ID and (w[0, 1:] == EOS_ID).sum() == 2
        assert set(w[0, 1:].tolist()) == {EOS_ID} | {c + OFFSET for c in b"abc"}


def test_eval_cli_spread_counts_the_sampled_bytes(tmp_path, capsys):
    from blt_core.eval import main
    path, _ = split_of(tmp_path, 20_000)
    results = {}
    for flag in ([], ["--spread"]):
        assert main(["--model", str(SHIPPED_DIR), "--data", str(path), "--seq-len", "256", "--max-bytes", "1000",
                     "--device", "cpu", "--json", *flag]) == 0
        results[bool(flag)] = json.loads(capsys.readouterr().out)
    assert results[False]["bytes"] == 1000                  # the first 1000 bytes: 3 windows and a shorter one
    assert results[True]["bytes"] == 4 * 256                # 4 windows of 256 bytes over the whole file
    assert results[True]["bpb"] != results[False]["bpb"]


def test_languages_experiment_records_its_sample(tmp_path):
    from blt_core.experiments import main
    (tmp_path / "broad").mkdir()
    big = np.random.default_rng(1).integers(0, SEPARATOR, 6_000, dtype=np.uint8).tobytes()
    (tmp_path / "broad" / "heldout_de.bin").write_bytes(big)
    small = "Hyvää päivää. ".encode() * 30                                         # 570 bytes < 1000
    (tmp_path / "broad" / "heldout_fi.bin").write_bytes(small)
    out = tmp_path / "languages.json"
    assert main(["languages", "--model", str(SHIPPED_DIR), "--corpora", str(tmp_path), "--seq-len", "256",
                 "--eval-bytes", "1000", "--device", "cpu", "--out", str(out)]) == 0
    rows = {r["language"]: r for r in json.loads(out.read_text())["rows"]}
    assert {k: (r["bytes"], r["file_bytes"], r["sampling"]) for k, r in rows.items()} == {
        "de": (4 * 256, 6_000, "spread"), "fi": (len(small), len(small), "spread")}
    assert rows["fi"]["bpb"] < rows["de"]["bpb"]           # repeated Finnish against random bytes


def test_the_threshold_is_solved_on_a_sample_of_the_whole_split(tmp_path):
    """A split whose first 40 kB is one repetitive document: the threshold solved on 16 kB spread
    over it gives about the target patch size over the whole split; solved on the first 16 kB
    alone (near-certain bytes) it would be so low that patches came out far shorter."""
    from blt_core import BLT
    from blt_core.eval import solve_threshold
    model = BLT.from_pretrained(SHIPPED_DIR)
    text = b"a" * 40_000 + bytes([SEPARATOR])
    text += open("tests/fixtures/corpus/train.bin", "rb").read()[:120_000]
    path = tmp_path / "heldout.bin"
    path.write_bytes(text)
    corpus = ByteCorpus(path, 512)
    threshold = solve_threshold(model, corpus, 4.0, "cpu", sample_bytes=16_384)
    entropies = torch.cat([model.entropies(ids)[0, :-1] for ids in corpus.sequential()])
    whole = len(entropies) / int((entropies > threshold).sum())        # bytes per patch over the split
    assert 3.0 < whole < 5.3
    prefix = [model.entropies(ids)[0, :-1] for ids in corpus.sequential(16_384)]
    first_only = float(torch.quantile(torch.cat(prefix).float(), 1 - 1 / 4.0))
    assert len(entropies) / max(int((entropies > first_only).sum()), 1) < 0.6 * whole
