import pytest
import torch

from blt_core import StackConfig
from blt_core.entropy import EntropyModel, entropy_of_logits
from blt_core.layers import causal_mask


def model(window=None, max_seq_len=64, seed=0):
    torch.manual_seed(seed)
    return EntropyModel(StackConfig(32, 2, 4, intermediate_size=64, rope_theta=10000.0,
                                    max_seq_len=max_seq_len, sliding_window=window)).eval()


def test_entropy_is_in_nats():
    assert torch.allclose(entropy_of_logits(torch.zeros(1, 260)), torch.log(torch.tensor([260.0])))
    assert entropy_of_logits(torch.tensor([[0.0, -1e9]])).item() < 1e-6


def test_batch_of_one_equals_row_in_batch():
    m = model()
    torch.manual_seed(1)
    rows = torch.randint(4, 260, (5, 40))
    alone = m.entropies(rows[2:3])
    for batch in (rows, rows[[2, 0]], rows[2:].flip(0)):
        where = (batch == rows[2]).all(1).nonzero()[0, 0]
        torch.testing.assert_close(m.entropies(batch)[where], alone[0], atol=1e-5, rtol=0)


def test_right_padding_does_not_leak():
    m = model()
    row = torch.randint(4, 260, (1, 30))
    padded = torch.cat([row, torch.full((1, 10), 3)], 1)
    other = torch.cat([row, torch.randint(4, 260, (1, 10))], 1)
    torch.testing.assert_close(m.entropies(padded)[:, :30], m.entropies(row), atol=1e-5, rtol=0)
    torch.testing.assert_close(m.entropies(other)[:, :30], m.entropies(row), atol=1e-5, rtol=0)


def test_windowed_model_reads_long_input_in_one_exact_pass():
    """A sliding-window model reads past its max_seq_len in one block-wise pass: equal to one
    dense pass under the window mask, and to chunks that keep enough context (2 layers of
    window 8 see at most 14 bytes back)."""
    m = model(window=8, max_seq_len=64)
    ids = torch.randint(4, 260, (2, 300))
    out = m.entropies(ids)
    assert out.shape == (2, 300)
    with torch.no_grad():
        x = m.embed_tokens(ids)
        cos, sin = m.rope(300, x.device, x.dtype)
        for layer in m.layers:
            x = layer(x, cos, sin, causal_mask(300, 300, 8, x.device))
        dense = entropy_of_logits(m.lm_head(m.norm(x)))
    torch.testing.assert_close(out, dense, atol=1e-5, rtol=0)
    torch.testing.assert_close(out[:, 200:], entropy_of_logits(m(ids[:, 180:]))[:, 20:], atol=1e-5, rtol=0)


@pytest.mark.parametrize("chunk", [128, 100, 7, 1])
def test_windowed_model_streams_chunks_as_one_pass(chunk):
    """Chunks that carry each layer's last window - 1 keys and values (WindowCache) give the
    entropies of one pass, whatever the chunk size against the window (8) and the block (128)."""
    m = model(window=8, max_seq_len=64)
    ids = torch.randint(4, 260, (2, 300))
    with torch.no_grad():
        one_pass = entropy_of_logits(m(ids))
    torch.testing.assert_close(m.entropies(ids, chunk=chunk), one_pass, atol=1e-5, rtol=0)


def test_long_input_without_window_keeps_first_chunk_exact():
    m = model(window=None, max_seq_len=64)
    ids = torch.randint(4, 260, (1, 200))
    out = m.entropies(ids)
    torch.testing.assert_close(out[:, :64], entropy_of_logits(m(ids[:, :64])), atol=1e-5, rtol=0)
    assert torch.isfinite(out).all()
    # positions after the first chunk see exactly their chunk's window of the last 64 bytes
    torch.testing.assert_close(out[:, 64:96], entropy_of_logits(m(ids[:, 32:96]))[:, 32:], atol=1e-5, rtol=0)


@pytest.mark.parametrize("window, chunk", [(8, 7), (8, None), (None, None)])
def test_next_byte_stats_are_the_same_predictions_as_the_entropies(window, chunk):
    """The top-k next tokens come from the very predictions whose entropies patch the text:
    entropies identical to `entropies`, probabilities those of a softmax over the same logits
    (windowed: one pass; without a window: the same overlapping chunks), most likely first."""
    m = model(window=window, max_seq_len=64)
    ids = torch.randint(4, 260, (2, 150))
    entropies, probs, top = m.next_byte_stats(ids, 5, chunk=chunk)
    assert probs.shape == top.shape == (2, 150, 5) and top.dtype == torch.long
    torch.testing.assert_close(entropies, m.entropies(ids, chunk=chunk), atol=0, rtol=0)
    assert (probs[..., :-1] >= probs[..., 1:]).all() and (probs.sum(-1) <= 1 + 1e-5).all()
    with torch.no_grad():
        first = torch.softmax(m(ids[:, :64]), dim=-1)       # the first chunk (or window) is one pass
    torch.testing.assert_close(probs[:, :64], first.topk(5, dim=-1).values, atol=1e-5, rtol=0)
    assert torch.equal(first.gather(-1, top[:, :64]), first.topk(5, dim=-1).values)
