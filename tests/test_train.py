"""Training, evaluation and FLOPs on CPU with the committed fixture corpus."""
import json
import math
from pathlib import Path

import pytest
import torch

from blt_core import BLT, preset
from blt_core.checkpoint import load_byte_lm
from blt_core.data import SEPARATOR, ByteCorpus
from blt_core.data.small import is_heldout
from blt_core.data.text import strip_roff
from blt_core.eval import bits_per_byte
from blt_core.flops import blt_flops_per_byte, byte_lm_flops_per_byte
from blt_core.tokenizer import BOS_ID, EOS_ID
from blt_core.train import TrainConfig, train

CORPUS = Path(__file__).parent / "fixtures" / "corpus"


def config(kind, out, **kw):
    return TrainConfig(kind=kind, preset="blt-tiny", data=str(CORPUS), out=str(out), batch_size=8, seq_len=128,
                       warmup=5, log_every=5, eval_bytes=4000, **kw)


def logged(out):
    rows = [json.loads(line) for line in (Path(out) / "log.jsonl").read_text().splitlines()]
    return [r for r in rows if "loss" in r], [r for r in rows if "heldout_bpb" in r]


@pytest.fixture(scope="module")
def entropy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("entropy")
    train(config("entropy", out, steps=60, eval_every=60))
    return out


def test_entropy_model_loss_falls(entropy_run):
    steps, evals = logged(entropy_run)
    assert steps[0]["loss"] > 4.5 and steps[-1]["loss"] < 0.7 * steps[0]["loss"]
    assert evals[-1]["heldout_bpb"] < 6.5 and evals[-1]["train_flops"] > 0
    model = load_byte_lm(entropy_run)
    assert model.cfg == preset("blt-tiny").entropy_model


def test_blt_loss_falls_and_checkpoint_is_hf_format(entropy_run, tmp_path):
    train(config("blt", tmp_path, steps=30, eval_every=30, entropy_model=str(entropy_run), target_patch_bytes=3.0))
    steps, evals = logged(tmp_path)
    assert steps[-1]["loss"] < 0.8 * steps[0]["loss"]
    assert 1.5 < evals[-1]["mean_patch_bytes"] < 6 and evals[-1]["threshold"] > 0
    model = BLT.from_pretrained(tmp_path)
    assert model.config.patching_threshold == pytest.approx(evals[-1]["threshold"])
    ent = load_byte_lm(entropy_run)                           # the frozen entropy model is unchanged
    torch.testing.assert_close(model.entropy_model.lm_head.weight, ent.lm_head.weight)


def test_blt_with_entropy_patching_needs_an_entropy_model(tmp_path):
    with pytest.raises(ValueError, match="entropy-model"):
        train(config("blt", tmp_path, steps=1))


def test_resume_continues_exactly(tmp_path):
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    train(config("bytes", straight, steps=12, eval_every=6))
    train(config("bytes", interrupted, steps=6, eval_every=6))
    train(config("bytes", interrupted, steps=12, eval_every=6), resume=True)
    a, b = load_byte_lm(straight), load_byte_lm(interrupted)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        torch.testing.assert_close(x, y, atol=1e-6, rtol=0, msg=name)
    assert b.cfg.dim == preset("blt-tiny").global_model.dim   # the byte baseline has the global shape


def test_corpus_windows_and_separator(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"ab" + bytes([SEPARATOR]) + b"cdefgh")
    corpus = ByteCorpus(tmp_path / "x.bin", seq_len=4, seed=0)
    batch = corpus.batch(16)
    assert batch.shape == (16, 5) and (batch[:, 0] == BOS_ID).all()
    windows = list(corpus.sequential())
    assert windows[0].tolist() == [[BOS_ID, 97 + 4, 98 + 4, EOS_ID, 99 + 4]]
    assert is_heldout("/a/b") == is_heldout("/a/b")
    assert strip_roff('.\\" comment\n.SH NAME\nls \\fBlist\\fR\n') == "NAME\nls list"


def test_bits_per_byte_of_an_untrained_model_is_near_uniform():
    torch.manual_seed(0)
    model = BLT(preset("blt-tiny", patching_mode="static"))
    out = bits_per_byte(model.eval(), ByteCorpus(CORPUS / "heldout.bin", 256), "cpu", max_bytes=2000)
    assert math.log2(260) - 1 < out["bpb"] < math.log2(260) + 2       # random init: near ln(260)
    assert out["mean_patch_bytes"] == pytest.approx(4, abs=0.1)


def test_flops_accounting():
    cfg = preset("blt-1b")
    small, large = (blt_flops_per_byte(cfg, p, 8)["global_model"] for p in (2.0, 8.0))
    assert small == pytest.approx(4 * large, rel=0.01)            # the global model runs once per patch
    long_small, long_large = (blt_flops_per_byte(cfg, p, 8192)["global_model"] for p in (2.0, 8.0))
    assert long_small > 4 * long_large                           # and attends over fewer patches
    lm = preset("blt-entropy")
    params = lm.n_layers * (4 * lm.dim ** 2 + 3 * lm.dim * lm.intermediate_size)
    assert byte_lm_flops_per_byte(lm, 1) == pytest.approx(2 * params + 2 * lm.n_layers * lm.dim + 2 * lm.dim * 260)


def test_experiments_write_plot_data(entropy_run, tmp_path):
    from blt_core.experiments import main
    out = tmp_path / "sweep.json"
    assert main(["threshold-sweep", "--entropy-model", str(entropy_run), "--preset", "blt-tiny", "--data", str(CORPUS),
                 "--targets", "2", "5", "--steps", "4", "--batch-size", "2", "--seq-len", "64", "--eval-bytes", "1000",
                 "--runs", str(tmp_path / "runs"), "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["command"].startswith("python -m blt_core.experiments threshold-sweep")
    sizes = [r["mean_patch_bytes"] for r in data["rows"]]
    assert len(sizes) == 2 and sizes[0] < sizes[1]                  # a higher target gives longer patches
    assert all(r["heldout_bpb"] > 0 and r["train_flops"] > 0 for r in data["rows"])
    flops = [r["inference_flops_per_byte"] for r in data["rows"]]
    assert flops[0] > flops[1] > 0                                  # longer patches: fewer global steps


def test_scaling_runs_every_variant(entropy_run, tmp_path):
    from blt_core.experiments import main
    out = tmp_path / "scaling.json"
    assert main(["scaling", "--entropy-model", str(entropy_run), "--presets", "blt-tiny", "--data", str(CORPUS),
                 "--steps", "3", "--batch-size", "2", "--seq-len", "64", "--eval-bytes", "1000",
                 "--runs", str(tmp_path / "runs"), "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["kind"], r["patching_mode"]) for r in rows] == [("blt", "entropy"), ("blt", "static"),
                                                                ("blt", "space"), ("bytes", None)]
    assert rows[1]["mean_patch_bytes"] == pytest.approx(max(1, round(rows[0]["mean_patch_bytes"])), rel=0.2)


def test_prepare_writes_splits_and_per_language_heldout(tmp_path, monkeypatch):
    from blt_core import data
    from blt_core.data import small
    docs = [(f"/usr/share/man/{lang}/man1/page{i}.1.gz", "manpages-l10n", f"{lang} text {i}")
            for lang in ("de", "ru") for i in range(400)]
    monkeypatch.setattr(small, "CORPORA", {"multilingual": lambda: iter(docs)})
    manifest = small.prepare(tmp_path)["multilingual"]
    folder = tmp_path / "multilingual"
    held = [p for p, _, _ in docs if small.is_heldout(p)]
    assert 0 < len(held) < 40 and manifest["documents"] == 800
    assert (folder / "heldout.bin").read_bytes().count(bytes([data.SEPARATOR])) == len(held)
    for lang in ("de", "ru"):
        expected = sum(1 for p in held if f"/{lang}/" in p)
        assert (folder / f"heldout_{lang}.bin").read_bytes().count(bytes([data.SEPARATOR])) == expected
    assert small.language_of("code", "/x.py") == "python" and data.SCRIPTS["ru"] == "Cyrillic"


def test_pooling_ablation_equalises_flops(entropy_run, tmp_path):
    from blt_core.experiments import main
    out = tmp_path / "pooling.json"
    assert main(["pooling", "--entropy-model", str(entropy_run), "--preset", "blt-tiny", "--data", str(CORPUS),
                 "--steps", "6", "--batch-size", "2", "--seq-len", "64", "--eval-bytes", "1000",
                 "--target-patch-bytes", "3", "--runs", str(tmp_path / "runs"), "--out", str(out)]) == 0
    cross, mean = json.loads(out.read_text())["rows"]
    assert mean["steps"] >= cross["steps"] and mean["train_flops"] == pytest.approx(cross["train_flops"], rel=0.2)
    assert BLT.from_pretrained(mean["run_dir"]).config.encoder_pooling == "mean"


def test_training_logs_are_gathered(entropy_run, tmp_path):
    from blt_core.experiments import main
    out = tmp_path / "logs.json"
    assert main(["training-logs", "--run-dirs", str(entropy_run), "--out", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["kind"] == "entropy" and row["evals"][-1]["heldout_bpb"] > 0 and len(row["steps"]) >= 10
