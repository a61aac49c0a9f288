"""Block-wise sliding-window attention equals one dense masked call."""
import pytest
import torch

from blt_core.layers import Stack, attend, causal_mask, windowed_attend
from blt_core.config import StackConfig


@pytest.mark.parametrize("T,window,block", [(1100, 512, 256), (513, 512, 256), (700, 100, 64), (256, 200, 1000),
                                            (1000, 1, 128), (300, 299, 7)])
def test_windowed_attention_equals_dense_mask(T, window, block):
    torch.manual_seed(T + window)
    q, k, v = (torch.randn(2, 4, T, 16) for _ in range(3))
    dense = attend(q, k, v, causal_mask(T, T, window, "cpu"))
    torch.testing.assert_close(windowed_attend(q, k, v, window, block), dense, atol=1e-5, rtol=0)


@pytest.mark.parametrize("past,T,window", [(511, 512, 512), (100, 300, 512), (7, 50, 8), (0, 200, 64)])
def test_windowed_attention_of_the_last_queries_equals_dense_rows(past, T, window):
    """Queries that are the last T of past + T positions (a chunk after a WindowCache's keys)."""
    torch.manual_seed(past + T)
    q, k, v = (torch.randn(1, 2, past + T, 16) for _ in range(3))
    i, j = torch.arange(past + T)[:, None], torch.arange(past + T)[None, :]
    dense = attend(q, k, v, (j <= i) & (i - j < window))[:, :, past:]
    torch.testing.assert_close(windowed_attend(q[:, :, past:], k, v, window), dense, atol=1e-5, rtol=0)


def test_stack_beyond_the_window_equals_dense_mask():
    torch.manual_seed(0)
    stack = Stack(StackConfig(32, 2, 4, intermediate_size=64, sliding_window=64)).eval()
    x = torch.randn(1, 200, 32)
    blocked = stack.run_layers(x)
    cos, sin = stack.rope(200, x.device, x.dtype)
    dense = x
    for layer in stack.layers:
        dense = layer(dense, cos, sin, causal_mask(200, 200, 64, x.device))
    torch.testing.assert_close(blocked, dense, atol=1e-5, rtol=0)
