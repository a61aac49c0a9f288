"""bench/train_throughput.py on the CPU: a few timed steps of a tiny BLT, patched by a random
entropy model whose threshold is solved for 4 bytes per patch."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from train_throughput import main  # noqa: E402


def test_train_throughput_reports_speed_and_patches(tmp_path, capsys):
    out = tmp_path / "train.json"
    args = ["--preset", "blt-tiny", "--batch-size", "2", "--seq-len", "512", "--steps", "2", "--warmup", "1",
            "--device", "cpu", "--out", str(out)]
    result = main(args)
    assert json.loads(out.read_text()) == result == json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["world_size"] == 1 and result["steps"] == 2 and result["patching"] == "entropy"
    assert result["bytes_per_s"] > 0 and result["tflops"] > 0 and result["mfu"] is None      # no CPU peak
    assert result["bytes_per_s"] == pytest.approx(2 * 2 * 512 / result["seconds"], rel=0.01)
    assert 3 < result["mean_patch_bytes"] < 5.5                     # threshold solved for 4 bytes per patch
    assert result["trainable_parameters"] < result["parameters"]    # the entropy model is frozen
    assert result["command"] == "python bench/train_throughput.py " + " ".join(args)
