"""Saving and strict loading in the transformers BLT format."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from blt_core import BLT, CheckpointError, preset

IDS = torch.tensor([[1, 76, 69, 80, 80, 83, 36, 91, 83, 86, 80, 72]])


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    model = BLT(preset("blt-tiny", hash_vocab=97)).eval()
    model.save_pretrained(tmp_path)
    return model, tmp_path


def test_round_trip_single_file(saved):
    model, path = saved
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = BLT.from_pretrained(path)
    assert loaded.config == model.config
    torch.testing.assert_close(loaded(IDS), model(IDS), atol=0, rtol=0)


def test_round_trip_sharded(saved, tmp_path_factory):
    model, _ = saved
    path = tmp_path_factory.mktemp("sharded")
    model.save_pretrained(path, max_shard_bytes=400_000)
    index = json.loads((path / "model.safetensors.index.json").read_text())
    files = sorted({*index["weight_map"].values()})
    assert len(files) > 1 and all((path / f).is_file() for f in files)
    assert "model.patcher.lm_head.weight" in index["weight_map"]  # entropy model in the same checkpoint
    torch.testing.assert_close(BLT.from_pretrained(path)(IDS), model(IDS), atol=0, rtol=0)


def test_dtype_and_device_arguments(saved):
    _, path = saved
    m = BLT.from_pretrained(path, device="cpu", dtype=torch.bfloat16)
    assert m.lm_head.weight.dtype == torch.bfloat16 and m.entropy_model.lm_head.weight.dtype == torch.bfloat16
    assert m(IDS).dtype == torch.float32


def _edit_weights(path, fn):
    tensors = load_file(path / "model.safetensors")
    fn(tensors)
    save_file(tensors, path / "model.safetensors")


def test_missing_tensor_is_named(saved):
    _, path = saved
    _edit_weights(path, lambda t: t.pop("model.local_decoder.norm.weight"))
    with pytest.raises(CheckpointError, match=r"lacks tensor model\.local_decoder\.norm\.weight \(expected shape \(64,\)\)"):
        BLT.from_pretrained(path)


def test_unexpected_tensor_is_named(saved):
    _, path = saved
    _edit_weights(path, lambda t: t.update({"model.extra.weight": torch.zeros(2)}))
    with pytest.raises(CheckpointError, match=r"unexpected tensor model\.extra\.weight"):
        BLT.from_pretrained(path)


def test_wrong_shape_is_named(saved):
    _, path = saved
    _edit_weights(path, lambda t: t.update({"lm_head.weight": torch.zeros(260, 8)}))
    with pytest.raises(CheckpointError, match=r"mis-shaped tensor lm_head\.weight \(expected shape \(260, 64\), found \(260, 8\)\)"):
        BLT.from_pretrained(path)


def test_config_that_does_not_match_weights(saved):
    _, path = saved
    cfg = json.loads((path / "config.json").read_text())
    cfg["global_config"]["num_hidden_layers"] = 3
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"lacks tensor model\.global_transformer\.layers\.2\."):
        BLT.from_pretrained(path)


@pytest.mark.parametrize("keep", [0.5, 0.999, 0.0001])
def test_truncated_file_is_named(saved, keep):
    _, path = saved
    f = path / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(CheckpointError, match=r"model\.safetensors is corrupt or truncated"):
        BLT.from_pretrained(path)


def test_corrupt_file_is_named(saved):
    _, path = saved
    (path / "model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(CheckpointError, match=r"model\.safetensors is corrupt or truncated"):
        BLT.from_pretrained(path)


def test_bad_or_missing_config(saved):
    _, path = saved
    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json is not valid JSON"):
        BLT.from_pretrained(path)
    (path / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"config\.json is missing"):
        BLT.from_pretrained(path)


def test_missing_directory():
    with pytest.raises(CheckpointError, match="does not exist"):
        BLT.from_pretrained("./no/such/dir")


def test_repo_id_offline_fails_at_once_with_advice(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(CheckpointError, match=r"facebook/blt-1b.*local directory"):
        BLT.from_pretrained("facebook/blt-1b")


def test_mean_pooling_round_trips(tmp_path):
    torch.manual_seed(0)
    model = BLT(preset("blt-tiny", hash_vocab=97, encoder_pooling="mean")).eval()
    model.save_pretrained(tmp_path)
    loaded = BLT.from_pretrained(tmp_path)
    assert loaded.config.encoder_pooling == "mean"
    torch.testing.assert_close(loaded(IDS), model(IDS), atol=0, rtol=0)
