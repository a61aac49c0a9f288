"""EntropyMemo: texts that begin like a recent one reuse its work, and the entropies stay exactly
those of a full pass (bit for bit) whatever was remembered before."""
import random

import torch

from blt_core import StackConfig
from blt_core.entropy import EntropyModel
from blt_core.entropy_memo import EntropyMemo

CHUNK = 16


def model(window=8):
    torch.manual_seed(0)
    return EntropyModel(StackConfig(32, 2, 4, intermediate_size=64, rope_theta=10000.0, max_seq_len=64,
                                    sliding_window=window)).eval()


def ids_of(values) -> torch.Tensor:
    return torch.tensor([values])


def test_edits_anywhere_give_the_entropies_of_a_full_pass():
    """A session of edits (typing at the end, a change in the middle, deletions, a paste of
    other text, the same text again): every answer equals the plain pass, bit for bit."""
    m = model()
    memo = EntropyMemo(m, chunk=CHUNK, stride=2)
    rng = random.Random(0)
    text = [rng.randrange(4, 260) for _ in range(150)]
    for step in range(40):
        kind = step % 5
        if kind == 0:
            text = text + [rng.randrange(4, 260)]
        elif kind == 1:
            text[rng.randrange(len(text))] = rng.randrange(4, 260)
        elif kind == 2:
            text = text[:-rng.randrange(1, 40)]
        elif kind == 3 and step % 10 == 3:
            text = [rng.randrange(4, 260) for _ in range(rng.randrange(1, 200))]
        ids = ids_of(text)
        assert torch.equal(memo.entropies(ids), m.entropies(ids, CHUNK)), step


def test_typing_at_the_end_computes_only_the_last_chunk():
    m = model()
    memo = EntropyMemo(m, chunk=CHUNK)
    text = list(range(4, 204))                                       # 200 positions, 12 whole chunks
    memo.entropies(ids_of(text))
    assert memo.computed == 200
    memo.entropies(ids_of(text + [7]))
    assert memo.computed == 200 + (201 - 192)                        # from the last boundary, 192
    memo.entropies(ids_of(text + [7]))                               # the same text again: only the tail
    assert memo.computed == 200 + 9 + 9


def test_a_change_resumes_from_the_last_kept_boundary_before_it():
    m = model()
    memo = EntropyMemo(m, chunk=CHUNK, stride=4)                     # boundaries kept: 64, 128, and the last two
    text = list(range(4, 204))
    memo.entropies(ids_of(text))
    edited = text.copy()
    edited[100] = 5                                                  # first change at 100: resume at 64
    assert torch.equal(memo.entropies(ids_of(edited)), m.entropies(ids_of(edited), CHUNK))
    assert memo.computed == 200 + (200 - 64)


def test_memory_stays_within_the_budget_and_texts_share_their_beginnings():
    m = model()
    one_state = 2 * 2 * 7 * 32 * 4                                   # layers x (k, v) x (window - 1) x dim x float32
    memo = EntropyMemo(m, chunk=CHUNK, stride=1, max_texts=8)
    text = list(range(4, 132))                                       # 128 positions: 8 boundaries
    memo.entropies(ids_of(text))
    alone = memo.held_bytes()
    memo.entropies(ids_of(text + [9]))                               # shares its 8 states with the first text
    assert memo.held_bytes() < alone + one_state + 2000
    small = EntropyMemo(m, chunk=CHUNK, stride=1, max_bytes=6 * one_state)
    for n in range(3):
        ids = ids_of([4 + n] + text * 2)                             # 257 positions, 16 boundaries
        assert torch.equal(small.entropies(ids), m.entropies(ids, CHUNK))
        assert small.held_bytes() <= 6 * one_state
        assert 1 <= len(small.texts[-1].states) <= 4                 # a sparser stride, not all 16
    tiny = EntropyMemo(m, chunk=CHUNK, max_bytes=2 * one_state)      # not even three states fit
    ids = ids_of(text * 2)
    assert torch.equal(tiny.entropies(ids), m.entropies(ids, CHUNK)) and not tiny.texts[-1].states


def test_models_without_a_window_and_batches_are_computed_as_usual():
    m = model(window=None)
    memo = EntropyMemo(m, chunk=CHUNK)
    ids = torch.randint(4, 260, (1, 100))
    assert torch.equal(memo.entropies(ids), m.entropies(ids, CHUNK)) and not memo.texts
    windowed = EntropyMemo(model(), chunk=CHUNK)
    batch = torch.randint(4, 260, (2, 100))
    assert torch.equal(windowed.entropies(batch), windowed.model.entropies(batch, CHUNK)) and not windowed.texts


def test_the_app_turns_it_on_and_answers_as_without_it(tiny_model):
    """BLT.remember_entropies routes BLT.entropies (and so patching) through the memo."""
    text = "A text typed into, one character at a time. " * 30
    ids = torch.tensor([tiny_model.tokenizer.encode(text)])
    plain = tiny_model.entropies(ids)
    try:
        tiny_model.remember_entropies(8 << 20)
        assert tiny_model.config.entropy_model.sliding_window == 512 and ids.shape[1] > 1024
        tiny_model.entropies(ids[:, :-5])
        computed = tiny_model.entropy_memo.computed
        assert torch.equal(tiny_model.entropies(ids), plain)
        assert tiny_model.entropy_memo.computed - computed < 512
    finally:
        tiny_model.remember_entropies(0)
    assert tiny_model.entropy_memo is None
