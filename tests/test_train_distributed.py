"""Data-parallel training on the CPU: two torchrun processes (gloo) against one plain process.

The global batch is the same at any world size, so two processes (each taking half of every
batch, in micro-batches of one row) must give the one-process loss curve up to float32 rounding,
and a run resumed on another world size must continue it.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from blt_core import BLT, preset
from blt_core.checkpoint import save_byte_lm
from blt_core.entropy import EntropyModel
from blt_core.flops import peak_tflops
from blt_core.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "fixtures" / "corpus"
STEPS, HALF = 6, 3     # warmup = HALF: the first HALF steps' learning rates do not depend on --steps


@pytest.fixture(scope="module")
def entropy_model(tmp_path_factory):
    """A random entropy model: its entropies vary, so the solved threshold gives varied patches."""
    out = tmp_path_factory.mktemp("entropy")
    torch.manual_seed(0)
    save_byte_lm(EntropyModel(preset("blt-tiny").entropy_model), out)
    return out


def config(out, entropy_model, steps=STEPS, **kw) -> TrainConfig:
    """threshold=None: solved for 3 bytes per patch (rank 0 solves it; the others receive it)."""
    kw.setdefault("threshold", None)
    return TrainConfig(kind="blt", preset="blt-tiny", data=str(CORPUS), out=str(out), steps=steps, batch_size=4,
                       seq_len=128, warmup=HALF, log_every=1, eval_every=HALF, eval_bytes=1000,
                       entropy_model=str(entropy_model), target_patch_bytes=3.0, device="cpu", **kw)


def flags(tc: TrainConfig) -> list[str]:
    """The command-line flags of a TrainConfig (what torchrun's processes parse back)."""
    out = [tc.kind]
    for name, value in vars(tc).items():
        if name != "kind" and value is not None and value is not False:
            out += ["--" + name.replace("_", "-")] + ([] if value is True else [str(value)])
    return out


def torchrun(tc: TrainConfig, resume=False, nproc=2):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "blt_core.train", *flags(tc)] + (["--resume"] if resume else [])
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])         # rank 0's result line


def steps_of(out):
    rows = [json.loads(line) for line in (Path(out) / "log.jsonl").read_text().splitlines()]
    return [r for r in rows if "loss" in r]


@pytest.fixture(scope="module")
def one_process(entropy_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("one")
    result = train(config(out, entropy_model))
    return out, result


def assert_same_curve(rows, reference):
    assert [r["step"] for r in rows] == [r["step"] for r in reference]
    for got, want in zip(rows, reference):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-5), got["step"]
        assert got["mean_patch_bytes"] == want["mean_patch_bytes"]          # the same bytes, the same patches


def test_two_processes_match_one(one_process, entropy_model, tmp_path):
    ref_out, ref_result = one_process
    result = torchrun(config(tmp_path, entropy_model, micro_batch=1, peak_tflops=0.5))
    rows, reference = steps_of(tmp_path), steps_of(ref_out)
    assert_same_curve(rows, reference)
    assert reference[-1]["loss"] < reference[0]["loss"]
    assert result["threshold"] == ref_result["threshold"]                    # solved on rank 0, broadcast
    assert result["heldout_bpb"] == pytest.approx(ref_result["heldout_bpb"], rel=1e-5)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["world_size"] == 2 and run["micro_batch"] == 1 and run["command"].startswith("torchrun")
    for row in rows:                                   # global bytes/s; MFU over 2 devices of 0.5 TFLOP/s
        assert row["bytes_per_s"] > 0 and row["mfu"] == pytest.approx(row["tflops"], rel=1e-3)
    assert all(r["mfu"] is None for r in reference)    # the CPU has no known peak
    # rank 0's HF checkpoint. Adam turns the rounding noise of a near-zero gradient into a step of
    # up to ~lr (3e-3) in its direction; a few weights in a million moved ~3e-5 apart.
    a, b = BLT.from_pretrained(ref_out), BLT.from_pretrained(tmp_path)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        torch.testing.assert_close(x, y, atol=1e-4, rtol=0, msg=name)


def test_resume_on_another_world_size(one_process, entropy_model, tmp_path):
    ref_out, ref_result = one_process
    threshold = ref_result["threshold"]                                   # not solved again
    train(config(tmp_path, entropy_model, steps=HALF, threshold=threshold))   # one process, then two
    torchrun(config(tmp_path, entropy_model, threshold=threshold), resume=True)
    assert_same_curve(steps_of(tmp_path), steps_of(ref_out))
    state = torch.load(tmp_path / "trainer_state.pt", weights_only=False)
    assert state["step"] == STEPS and state["world_size"] == 2


def test_micro_batches_and_errors(one_process, entropy_model, tmp_path):
    ref_out, ref_result = one_process
    threshold = ref_result["threshold"]
    train(config(tmp_path / "micro", entropy_model, micro_batch=2, threshold=threshold))   # 2 micro-batches
    assert_same_curve(steps_of(tmp_path / "micro"), steps_of(ref_out))
    with pytest.raises(ValueError, match="micro-batches"):
        train(config(tmp_path / "bad", entropy_model, micro_batch=3, threshold=threshold))


def test_peak_tflops():
    assert peak_tflops("cpu") is None and peak_tflops("cpu", 989.0) == 989.0
