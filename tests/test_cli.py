"""`python -m blt_core` as a user runs it: real processes, JSON on stdout, errors on stderr."""
import json
import os
import subprocess
import sys

import pytest
import torch

from blt_core import BLT, preset


def cli(*args, stdin=None, env=None):
    return subprocess.run([sys.executable, "-m", "blt_core", *args], input=stdin, capture_output=True,
                          timeout=120, env=env)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    BLT(preset("blt-tiny", patching_threshold=5.3)).save_pretrained(path)
    return str(path)


def test_patch_json(checkpoint):
    out = cli("--model", checkpoint, "patch", "Hello, BLT!", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["model"] == checkpoint and report["trained"] is True
    assert report["bytes"] == 11 and sum(report["lengths"]) == 12
    assert [p["start"] for p in report["patches"]] == report["starts"]
    assert len(report["per_position"]) == 12 and report["per_position"][0]["label"] == "<s>"


def test_entropy_json_from_stdin(checkpoint):
    out = cli("--model", checkpoint, "entropy", "-", "--json", stdin="ünï\n".encode())
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["bytes"] == 6 and len(report["entropies"]) == 7
    assert all(0 <= e <= 5.6 for e in report["entropies"])  # nats, at most ln(260)


def test_modes_and_options(checkpoint):
    out = cli("--model", checkpoint, "patch", "aaaa bbbb cccc", "--mode", "static", "--patch-size", "3", "--json")
    assert json.loads(out.stdout)["lengths"] == [1, 3, 3, 3, 3, 2]
    out = cli("--model", checkpoint, "patch", "aaaa bbbb", "--mode", "space", "--max-patch-length", "2", "--json")
    assert json.loads(out.stdout)["lengths"] == [1, 2, 2, 1, 2, 2]


def test_demo_runs_on_default_model():
    out = cli("demo")
    assert out.returncode == 0, out.stderr
    assert b"patches: <s>|" in out.stdout


def test_errors_exit_nonzero_with_message(checkpoint):
    out = cli("--model", checkpoint, "patch")
    assert out.returncode == 2 and b"no text given" in out.stderr
    out = cli("--model", checkpoint, "patch", "x", "--threshold", "nan")
    assert out.returncode == 2 and b"finite" in out.stderr
    out = cli("--model", "/no/such/checkpoint", "patch", "x")
    assert out.returncode == 1 and b"does not exist" in out.stderr


def test_generate_json_and_errors(checkpoint):
    out = cli("--model", checkpoint, "generate", "Hello", "--max-new-bytes", "12", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert len(report["entropies"]) <= 12 and report["stop_reason"] in ("max_new_bytes", "eos")
    out = cli("--model", checkpoint, "generate", "Hello", "--top-p", "0")
    assert out.returncode == 2 and b"top_p" in out.stderr


def test_generate_fast_path_flags(checkpoint):
    """--speculative (and --decoder-first, --device-decides) decode the same greedy bytes as the default path; --kernels on a machine
    without CUDA is refused with the reason; --speculative with sampling is refused too."""
    plain = cli("--model", checkpoint, "generate", "Hello", "--max-new-bytes", "10", "--json")
    fast = cli("--model", checkpoint, "generate", "Hello", "--max-new-bytes", "10", "--json", "--speculative")
    assert plain.returncode == 0 and fast.returncode == 0, fast.stderr
    assert json.loads(fast.stdout)["text"] == json.loads(plain.stdout)["text"]
    first = cli("--model", checkpoint, "generate", "Hello", "--max-new-bytes", "10", "--json", "--decoder-first",
                "--device-decides", "--mode", "static", "--patch-size", "3")      # no graphs: host-decided
    static = cli("--model", checkpoint, "generate", "Hello", "--max-new-bytes", "10", "--json",
                 "--mode", "static", "--patch-size", "3")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["text"] == json.loads(static.stdout)["text"]
    out = cli("--model", checkpoint, "generate", "Hello", "--speculative", "--temperature", "0.8")
    assert out.returncode != 0 and b"greedily" in out.stderr
    if not torch.cuda.is_available():
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        out = cli("--model", checkpoint, "--device", "cpu", "generate", "Hello", "--kernels", env=env)
        assert out.returncode != 0 and b"needs a CUDA device" in out.stderr


def test_tokens_json(checkpoint):
    out = cli("--model", checkpoint, "tokens", "Bytes, not tokens. 世界", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["bytes"] == 25
    assert {r["name"]: r["tokens"] for r in report["tokenizers"]} == {"r50k_base": 10, "cl100k_base": 9,
                                                                      "o200k_base": 6}


def test_corpus_json_from_a_file(checkpoint, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("Patches grow where the next byte is easy to guess. " * 30)
    out = cli("--model", checkpoint, "corpus", "--file", str(path), "--passages", "2", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["bytes"] == 1530 and len(report["passages"]["most_predictable"]) == 2
    assert sum(int(k) * v for k, v in report["patch_size_histogram"].items()) == 1530


def test_corpus_of_bytes_that_are_not_utf8_exits_2(checkpoint):
    out = cli("--model", checkpoint, "corpus", "-", stdin=b"\xff\xfe")
    assert out.returncode == 2 and b"can't decode byte 0xff" in out.stderr
