import torch

from blt_core import StackConfig
from blt_core.entropy import EntropyModel, entropy_of_logits


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


def test_long_input_is_chunked_with_context():
    """With a sliding window of 8 and 2 layers, a position sees at most 14 bytes back, fewer than
    the 32 bytes of context each chunk keeps, so chunking must equal one full pass."""
    m = model(window=8, max_seq_len=64)
    ids = torch.randint(4, 260, (2, 300))
    full = entropy_of_logits(m(ids))
    chunked = m.entropies(ids)
    assert chunked.shape == (2, 300)
    torch.testing.assert_close(chunked, full, atol=1e-5, rtol=0)


def test_long_input_without_window_keeps_first_chunk_exact():
    m = model(window=None, max_seq_len=64)
    ids = torch.randint(4, 260, (1, 200))
    out = m.entropies(ids)
    torch.testing.assert_close(out[:, :64], entropy_of_logits(m(ids[:, :64])), atol=1e-5, rtol=0)
    assert torch.isfinite(out).all()
    # positions after the first chunk see exactly their chunk's window of the last 64 bytes
    torch.testing.assert_close(out[:, 64:96], entropy_of_logits(m(ids[:, 32:96]))[:, 32:], atol=1e-5, rtol=0)
