"""The BLT forward: shapes, causality, batch consistency and patching inside the model."""
import pytest
import torch

from blt_core import BLT, preset
from blt_core.patching import start_mask

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Patches scale better than tokens!", "ok"]


def ids_of(model, text):
    return torch.tensor([model.tokenizer.encode(text)])


def test_logits_shape_and_dtype(tiny_model):
    ids = ids_of(tiny_model, TEXTS[0])
    out = tiny_model(ids)
    assert out.shape == (1, ids.shape[1], 260) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_causal_prefix_gives_same_logits(tiny_model):
    """Logits at t depend on bytes <= t only (patching included)."""
    ids = ids_of(tiny_model, TEXTS[0])
    full = tiny_model(ids)
    for t in (1, 5, 17, ids.shape[1] - 1):
        torch.testing.assert_close(tiny_model(ids[:, :t])[:, :t], full[:, :t], atol=1e-5, rtol=0)


def test_batch_rows_equal_batch_of_one(tiny_model):
    rows, lengths = tiny_model.tokenizer.batch_encode(TEXTS)
    batch = tiny_model(torch.tensor(rows))
    for i, (row, n) in enumerate(zip(rows, lengths)):
        alone = tiny_model(torch.tensor([row[:n]]))
        torch.testing.assert_close(batch[i:i + 1, :n], alone, atol=1e-5, rtol=0)


def test_patch_lengths_argument_equals_internal_patching(tiny_model):
    ids = ids_of(tiny_model, TEXTS[1])
    p = tiny_model.patch(TEXTS[1])
    lengths = torch.tensor([p.lengths + ([0] if p.next_starts_patch else [])])
    torch.testing.assert_close(tiny_model(ids, patch_lengths=lengths), tiny_model(ids), atol=0, rtol=0)
    assert 1 < p.count < ids.shape[1]


def test_patching_changes_logits(tiny_model):
    ids = ids_of(tiny_model, TEXTS[0])
    T = ids.shape[1]
    static = tiny_model.logits(ids, start_mask("static", T, ids=ids, patch_size=4))
    by_byte = tiny_model.logits(ids, start_mask("byte", T, ids=ids))
    assert (static - by_byte).abs().max() > 1e-3


@pytest.mark.parametrize("mode", ["entropy", "entropy_monotonic", "static", "space", "byte"])
def test_patch_api_every_mode(tiny_model, mode):
    p = tiny_model.patch("Hello, wörld!", mode=mode, threshold=0.01 if mode == "entropy_monotonic" else None,
                         max_patch_length=5)
    assert sum(p.lengths) == len(p.ids) == len("Hello, wörld!".encode()) + 1
    assert len(p.entropies) == len(p.ids) and max(p.lengths) <= 5
    assert p.ids[0] == 1


def test_model_without_entropy_model_explains():
    torch.manual_seed(0)
    m = BLT(preset("blt-tiny").replace(entropy_model=None, patching_mode="static")).eval()
    assert m(ids_of(m, "abc")).shape == (1, 4, 260)
    with pytest.raises(ValueError, match="no entropy model"):
        m.entropies(ids_of(m, "abc"))


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="decoder dim"):
        preset("blt-tiny").replace(decoder=preset("blt-1b").decoder)
    with pytest.raises(ValueError, match="patching_mode"):
        preset("blt-tiny", patching_mode="bpe")
    with pytest.raises(KeyError, match="blt-1b"):
        preset("blt-2b")


def test_public_presets_have_the_published_sizes():
    with torch.device("meta"):
        assert round(BLT("blt-1b").num_params() / 1e9, 2) == 4.63  # transformers' blt-1b shape
    assert preset("blt-entropy").dim == 768 and preset("blt-1b").hash_vocab == 500002
