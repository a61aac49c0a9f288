"""The decoder's cross-attention step folded into its patch's slots (folded_cross.py) against the
eager CrossAttention it replaces. Without CUDA the kernels run in Triton's interpreter
(TRITON_INTERPRET=1, set in conftest.py); without Triton the module is skipped."""
import pytest
import torch

pytest.importorskip("triton")
from blt_core.config import StackConfig  # noqa: E402
from blt_core.generation import KernelConfig  # noqa: E402
from blt_core.generation import folded_cross as fc  # noqa: E402
from blt_core.layers import CrossAttention, KVCache  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu":
    from test_decode_kernels import _interpreter_reads_scalars
    _interpreter_reads_scalars()


def _layers(dim, heads, kv_heads, n, dtype):
    torch.manual_seed(4)
    cfg = StackConfig(dim, 1, heads, n_kv_heads=kv_heads, intermediate_size=96, max_seq_len=64)
    layers = [CrossAttention(cfg) for _ in range(n)]
    for layer in layers:
        for p in layer.parameters():
            torch.nn.init.normal_(p, mean=1.0 if p.dim() == 1 else 0.0, std=0.3 if p.dim() == 1 else 0.15)
    return [layer.to(DEVICE, dtype).eval() for layer in layers]


# dim, heads, kv heads, slots k: blt-1b's form (k 2, every head its own keys), grouped keys, and
# head and slot counts that are not powers of two (padded inside the kernel).
SHAPES = [(64, 4, 4, 2), (64, 4, 2, 2), (96, 3, 1, 3)]


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 2e-5), (torch.bfloat16, 3e-2)], ids=["f32", "bf16"])
@pytest.mark.parametrize("dim,heads,kv_heads,k", SHAPES)
def test_folded_step_equals_the_eager_cross_attention(dtype, tol, dim, heads, kv_heads, k):
    """Two layers folded in one launch, three rows each with its own slots: every row and layer
    gives x + attend(x, keys, values) of the eager layer (2x + o(attention))."""
    B = 3
    layers = _layers(dim, heads, kv_heads, 2, dtype)
    g = torch.Generator().manual_seed(5)
    caches, folds = [], []
    for layer in layers:
        cache = KVCache(B, kv_heads, k, dim // heads, dtype, DEVICE)
        with torch.no_grad():
            keys, values = layer.kv(torch.randn(B, k, dim, generator=g).to(DEVICE, dtype))
        cache.fill(keys, values)
        caches.append(cache)
        folds.append(fc.FoldedSlots.empty(layer, B, k, DEVICE))
    fc.fold_slots(_Decoder(layers), caches, folds)
    x = torch.randn(B, dim, generator=g).to(DEVICE, dtype)
    for layer, cache, fold in zip(layers, caches, folds):
        with torch.no_grad():
            ref = x[:, None] + layer.attend(x[:, None], cache.k, cache.v)
        out = fc.cross_folded(layer, x, fold, KernelConfig())
        assert out.dtype == dtype and out.shape == (B, dim)
        assert (out.float() - ref[:, 0].float()).abs().max() <= tol * ref.float().abs().max()


def test_a_view_of_the_first_rows_folds_only_those_rows():
    """A stepper's row view (IncrementalBLT.rows) folds through the whole stepper's tables: the
    first n rows take the new slots, the rest keep what they had."""
    dim, heads, k, B = 64, 4, 2, 3
    layers = _layers(dim, heads, heads, 1, torch.float32)
    cache = KVCache(B, heads, k, dim // heads, torch.float32, DEVICE)
    fold = fc.FoldedSlots.empty(layers[0], B, k, DEVICE)
    g = torch.Generator().manual_seed(6)
    cache.fill(torch.randn(cache.k.shape, generator=g).to(DEVICE), torch.randn(cache.v.shape, generator=g).to(DEVICE))
    tables = fc.fold_tables(_Decoder(layers), [cache], [fold])
    fc.fold_slots(_Decoder(layers), [cache], [fold], tables)
    before = fold.u.clone(), fold.w.clone()
    cache.k.mul_(2.0)
    view = KVCache.__new__(KVCache)
    view.k, view.v = cache.k[:1], cache.v[:1]
    fc.fold_slots(_Decoder(layers), [view], [fc.FoldedSlots(fold.u[:1], fold.w[:1])], tables)
    assert torch.allclose(fold.u[:1], 2 * before[0][:1], rtol=1e-5, atol=1e-6)
    assert torch.equal(fold.u[1:], before[0][1:])
    assert torch.equal(fold.w, before[1])                         # values unchanged: w as it was


class _Decoder:
    """What fold_slots reads of a local decoder: its cross-attention layers."""

    def __init__(self, layers):
        self.cross_attn_layers = layers
