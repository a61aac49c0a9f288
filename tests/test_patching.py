"""Every patcher on hand-made entropy sequences; the exact rules are in blt_core/patching.py."""
import pytest
import torch
from hypothesis import given, strategies as st

from blt_core import ByteTokenizer
from blt_core.patching import (entropy_patches, mask_from_lengths, monotonic_patches, patch, space_patches,
                               start_mask, static_patches)

T = 1.0  # threshold


def test_global_threshold_rule():
    # H[p-1] > T starts p: H = [.5, 2, .5, .5, 3, .2] -> starts 0, 1, 2 (H1), 5 (H4); next: H5 no
    p = entropy_patches([0.5, 2.0, 0.5, 0.5, 3.0, 0.2], T)
    assert p.starts == [0, 1, 2, 5] and p.lengths == [1, 1, 3, 1] and not p.next_starts_patch


def test_equal_to_threshold_is_not_a_boundary():
    assert entropy_patches([0.0, 1.0, 1.0, 1.0], 1.0).lengths == [1, 3]


def test_last_entropy_decides_next_patch():
    assert entropy_patches([0.0, 0.0, 5.0], T).next_starts_patch
    assert not entropy_patches([0.0, 5.0, 0.0], T).next_starts_patch


@pytest.mark.parametrize("fn", [lambda e, **k: entropy_patches(e, T, **k), lambda e, **k: monotonic_patches(e, T, **k)])
def test_empty_and_one_byte(fn):
    empty = fn([])
    assert empty.lengths == [] and empty.count == 0
    one = fn([3.0])
    assert one.lengths == [1] and one.starts == [0] and one.next_starts_patch  # position 1 always starts


def test_all_above_and_all_below():
    assert entropy_patches([9.0] * 6, T).lengths == [1] * 6
    below = entropy_patches([0.1] * 6, T)
    assert below.lengths == [1, 5] and not below.next_starts_patch


def test_max_patch_length_splits_from_patch_start():
    p = entropy_patches([0.1] * 12, T, max_patch_length=4)
    assert p.lengths == [1, 4, 4, 3] and not p.next_starts_patch
    full = entropy_patches([0.1] * 9, T, max_patch_length=4)
    assert full.lengths == [1, 4, 4] and full.next_starts_patch  # last patch is full: next opens one
    assert entropy_patches([0.1] * 5, T, max_patch_length=1).lengths == [1] * 5


def test_monotonic_rule():
    # rise H[p-1] - H[p-2] > T starts p >= 3; p = 2 always starts
    p = monotonic_patches([0.0, 0.5, 2.0, 2.5, 0.1, 1.5, 1.6], T)
    assert p.starts == [0, 1, 2, 3, 6] and p.lengths == [1, 1, 1, 3, 1]
    assert not p.next_starts_patch


def test_static_rule():
    assert static_patches(10, 4).lengths == [1, 4, 4, 1]
    assert static_patches(9, 4).next_starts_patch and not static_patches(10, 4).next_starts_patch
    assert static_patches(10, 4, max_patch_length=3).lengths == [1, 3, 1, 3, 1, 1]


def test_space_rule():
    tok = ByteTokenizer()
    ids = tok.encode("ab  cd,e ü")
    p = space_patches(ids)
    text = [tok.decode(ids[s:s + n]) for s, n in zip(p.starts, p.lengths)]
    assert text == ["", "ab ", " ", "cd,", "e ", "ü"]
    assert space_patches(tok.encode("ab "), max_patch_length=2).lengths == [1, 2, 1]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="mode"):
        patch("tokens", length=3)
    with pytest.raises(ValueError, match="threshold"):
        patch("entropy", entropies=[1.0])
    with pytest.raises(ValueError, match="finite"):
        patch("entropy", entropies=[1.0], threshold=float("nan"))
    with pytest.raises(ValueError, match="max_patch_length"):
        patch("byte", length=3, max_patch_length=0)
    with pytest.raises(ValueError, match="patch_size"):
        patch("static", length=3, patch_size=0)


@given(st.lists(st.floats(0, 6, allow_nan=False), max_size=80), st.floats(0, 6),
       st.one_of(st.none(), st.integers(1, 9)), st.sampled_from(["entropy", "entropy_monotonic", "byte"]))
def test_lengths_sum_to_input_length(ent, threshold, mpl, mode):
    p = patch(mode, entropies=ent, threshold=threshold, max_patch_length=mpl, length=len(ent))
    assert sum(p.lengths) == len(ent) and all(n >= 1 for n in p.lengths)
    assert p.starts == [sum(p.lengths[:i]) for i in range(p.count)]
    if mpl:
        assert max(p.lengths, default=0) <= mpl
    if ent:
        assert p.lengths[0] == 1


@given(st.lists(st.floats(0, 6, allow_nan=False), min_size=1, max_size=40), st.floats(0, 6))
def test_batched_mask_equals_rows(ent, threshold):
    rows = torch.tensor([ent, ent[::-1]])
    mask = start_mask("entropy", len(ent), entropies=rows, threshold=threshold)
    for row, m in zip(rows, mask):
        single = patch("entropy", entropies=row, threshold=threshold)
        assert m[:-1].nonzero().flatten().tolist() == single.starts and bool(m[-1]) == single.next_starts_patch


def test_mask_from_lengths_reads_transformers_layout():
    assert mask_from_lengths(torch.tensor([[1, 2, 3, 0]]), 6).int().tolist() == [[1, 1, 0, 1, 0, 0, 1]]
    assert mask_from_lengths(torch.tensor([[1, 2, 3]]), 6).int().tolist() == [[1, 1, 0, 1, 0, 0, 0]]
    with pytest.raises(ValueError):
        mask_from_lengths(torch.tensor([[1, -1]]), 2)
