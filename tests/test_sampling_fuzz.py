"""sample_next under any parameters SamplingParams accepts, on logits with the shapes a model
gives (finite, huge, or -inf where a byte is impossible): an id is always drawn, never a special
id other than EOS and never one the logits rule out (hypothesis). Found: a repetition penalty or
top_p below float32's smallest number (rounded to 0) gave NaN logits or nothing to draw."""
import torch
from hypothesis import given, settings, strategies as st

from blt_core.sampling import SamplingParams, make_generators, sample_next
from blt_core.tokenizer import BOE_ID, BOS_ID, PAD_ID

TINY = st.sampled_from([5e-324, 1e-300, 1e-45, 1e-30, 1e-8])
params = st.builds(
    SamplingParams, max_new_bytes=st.just(1),
    temperature=st.floats(0, 100) | TINY | st.just(100.0),
    top_k=st.none() | st.integers(1, 300),
    top_p=st.none() | st.floats(0, 1, exclude_min=True) | TINY,
    repetition_penalty=st.floats(0, 100, exclude_min=True) | TINY | st.just(100.0),
    seed=st.integers(0, 2**31), stop_at_eos=st.booleans())
logit = st.floats(-1e4, 1e4) | st.sampled_from([-float("inf"), 3e38, -3e38, 0.0])


@settings(max_examples=300, deadline=None)
@given(params, st.lists(logit, min_size=260, max_size=260), st.lists(st.integers(-1, 259), min_size=1, max_size=8))
def test_sample_next_always_draws_a_byte(p, values, history):
    logits = torch.tensor([values], dtype=torch.float32)
    logits[0, 4 + len(history) % 256] = 1.0                    # at least one byte is possible
    out = sample_next(logits, torch.tensor([history]), p, make_generators(p, 1, torch.device("cpu")))
    i = int(out[0])
    assert 0 <= i < 260 and i not in (BOE_ID, BOS_ID, PAD_ID)
    assert logits[0, i] > -float("inf")
