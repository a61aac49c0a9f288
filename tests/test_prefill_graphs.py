"""Prefills into kept steppers (blt_core/generation/prefill_graphs.py), their parts run eagerly on
the CPU: the rows prefilled, padded to a kept stepper's rows or not and after other prefills in
the same stepper, hold what a fresh stepper's prefill gives them. The CUDA capture itself is
checked on the GPU by tests/test_batching.py's CUDA test, whose engine prefills this way."""
import pytest
import torch

from blt_core.generation.driver import right_padded
from blt_core.generation.prefill_graphs import PrefillGraphs
from blt_core.generation.stepper import PREFILL_ROUND, IncrementalBLT
from blt_core.patching import PatchingParams

PROMPTS = ["Hello there, ", "a longer prompt, which makes more patches than the first one does",
           "x", "Bytes, not tokens. " * 5]


def fresh(model, ids, lengths, patching):
    inc = IncrementalBLT(model, ids.shape[0], 512, patching)
    inc.prefill(ids, lengths)
    return inc


def assert_rows_equal(staged, inc, T0):
    """Every per-row tensor of inc's rows equal in staged's first rows, over the prompt positions."""
    n = inc.B
    for (obj, name), (ref_obj, _) in zip(staged._per_row(), inc._per_row()):
        got, want = getattr(obj, name)[:n], getattr(ref_obj, name)
        if name in ("k", "v") and got.dim() == 4 and got.shape[2] > T0:    # caches: the prompt's positions
            got, want = got[:, :, :T0], want[:, :, :T0]
        elif name == "ids":
            got, want = got[:, :T0], want[:, :T0]
        if got.is_floating_point():
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5, msg=name)
        else:
            assert torch.equal(got, want), name


@pytest.mark.parametrize("patching", [PatchingParams(), PatchingParams(mode="static", patch_size=3),
                                      PatchingParams(mode="byte"), PatchingParams(threshold=0.5, max_patch_length=4)],
                         ids=["entropy", "static", "byte", "entropy-max-length"])
def test_staged_prefills_equal_fresh_ones(tiny_model, patching):
    graphs = PrefillGraphs(tiny_model, (1, 4), positions=256, cuda_graphs=False)
    tok = tiny_model.tokenizer
    for prompts in (PROMPTS, PROMPTS[:3], PROMPTS[2:3], PROMPTS[:1], PROMPTS[1:3]):   # 4 rows, padded, 1 row
        ids, lengths = right_padded([tok.encode(p) for p in prompts], tiny_model.device, PREFILL_ROUND)
        assert graphs.rows_for(len(prompts), ids.shape[1]) == (1 if len(prompts) == 1 else 4)
        staged = graphs.prefill(ids, lengths, patching)
        assert_rows_equal(staged, fresh(tiny_model, ids, lengths, patching), ids.shape[1])
    assert set(graphs.steppers) == {1, 4}


def test_prompts_past_the_kept_steppers_do_not_fit(tiny_model):
    graphs = PrefillGraphs(tiny_model, (1, 4), positions=128, cuda_graphs=False)
    assert graphs.rows_for(4, 128) == 4 and graphs.rows_for(2, 64) == 4
    assert graphs.rows_for(5, 64) is None and graphs.rows_for(1, 192) is None
    ids, lengths = right_padded([[1] * 150], tiny_model.device, PREFILL_ROUND)
    with pytest.raises(ValueError, match="do not fit"):
        graphs.prefill(ids, lengths, PatchingParams())


def test_a_staged_prefill_refuses_what_a_fresh_one_refuses(own_tiny_model):
    """Too many patches for the global context: the same ValueError as a fresh stepper's."""
    own_tiny_model.config.global_model.max_seq_len = 40          # patch_context
    graphs = PrefillGraphs(own_tiny_model, (1,), positions=128, cuda_graphs=False)
    ids, lengths = right_padded([[7] * 60], own_tiny_model.device, PREFILL_ROUND)
    with pytest.raises(ValueError, match="global model's context") as staged:
        graphs.prefill(ids, lengths, PatchingParams(mode="byte"))
    with pytest.raises(ValueError, match="global model's context") as eager:
        fresh(own_tiny_model, ids, lengths, PatchingParams(mode="byte"))
    assert str(staged.value) == str(eager.value)


def test_every_shape_the_first_prefill_captures_runs_on_its_stand_in_prompts(tiny_model):
    """On CUDA the first prefill of a row count captures every (length, patch count) shape over
    stand-in prompts; here each of those runs eagerly instead (so a bad index would raise), and a
    real prefill after them still equals a fresh one."""
    graphs = PrefillGraphs(tiny_model, (1, 4), positions=192, cuda_graphs=False)
    names = []
    graphs._capture = lambda name, fn: (names.append(name), fn())
    graphs.steppers[4] = IncrementalBLT(tiny_model, 4, 192)
    graphs._capture_all(4)
    assert [n for n in names if n[0] == "entropies"] == [("entropies", 4, T0) for T0 in (64, 128, 192)]
    assert [n[2:] for n in names if n[0] == "rest"] == [(64, 64), (64, 128), (128, 64), (128, 128), (128, 192),
                                                        (192, 64), (192, 128), (192, 192), (192, 193)]
    ids, lengths = right_padded([tiny_model.tokenizer.encode(p) for p in PROMPTS[:2]], tiny_model.device, PREFILL_ROUND)
    staged = graphs.prefill(ids, lengths, PatchingParams())
    assert_rows_equal(staged, fresh(tiny_model, ids, lengths, PatchingParams()), ids.shape[1])
