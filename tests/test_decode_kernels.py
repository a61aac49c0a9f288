"""The fused Triton decoding kernels against the eager layers they replace. On a machine without
CUDA they run in Triton's interpreter (TRITON_INTERPRET=1, set in conftest.py); without
Triton installed (the CPU wheel of torch does not bring it) the module is skipped."""
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("triton")                    # without CUDA, conftest.py set TRITON_INTERPRET=1
from blt_core.config import StackConfig  # noqa: E402
from blt_core.generation import DecodeOptions, KernelConfig  # noqa: E402
from blt_core.generation import decode_kernels as dk  # noqa: E402
from blt_core.generation import sessions  # noqa: E402
from blt_core.generation.stepper import step_mask  # noqa: E402
from blt_core.layers import Block, CachedAttention, CrossAttention, KVCache, rope_tables  # noqa: E402


DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _interpreter_reads_scalars():
    """Triton 3.6's interpreter turns a scalar into an int with int(one-element array), which
    numpy >= 2.4 refuses; read the element instead (interpreter only, tests only)."""
    from triton.runtime import interpreter

    patch = interpreter._patch_lang_tensor
    if getattr(patch, "reads_scalars", False):
        return

    def patched(tensor, scope):
        patch(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))
    patched.reads_scalars = True
    interpreter._patch_lang_tensor = patched


if DEVICE == "cpu":
    _interpreter_reads_scalars()


def _cfg(dim=64, heads=4, **kw):
    return StackConfig(dim, 1, heads, intermediate_size=96, max_seq_len=64, **kw)


def _randomise(module):
    torch.manual_seed(1)
    for p in module.parameters():
        torch.nn.init.normal_(p, mean=1.0 if p.dim() == 1 else 0.0, std=0.3 if p.dim() == 1 else 0.15)
    return module


# Kinds of block the kernel supports (block_config picks one on a GPU): K not a multiple of the
# block, per-tile or late reduction, with or without prefetching the next tile (LATE and PREFETCH
# act on single rows), K shared out among programs that add into a workspace (SPLIT; 3 shares of
# 80 in 16-wide tiles leave one program with a short share).
# Several rows with tiles of at least 16 outputs and 16 of K take tensor cores (DOT, DOT_SPLIT).
PLAIN, LATE, LATE_PF, PF, SPLIT, SPLIT_PF, DOT, DOT_SPLIT = (
    dict(BLOCK_N=8, BLOCK_K=32, LATE=False, PREFETCH=False, SPLIT=1),
    dict(BLOCK_N=4, BLOCK_K=64, LATE=True, PREFETCH=False, SPLIT=1),
    dict(BLOCK_N=16, BLOCK_K=16, LATE=True, PREFETCH=True, SPLIT=1),
    dict(BLOCK_N=8, BLOCK_K=32, LATE=False, PREFETCH=True, SPLIT=1),
    dict(BLOCK_N=8, BLOCK_K=16, LATE=True, PREFETCH=False, SPLIT=3),
    dict(BLOCK_N=4, BLOCK_K=16, LATE=False, PREFETCH=True, SPLIT=2),
    dict(BLOCK_N=16, BLOCK_K=32, LATE=False, PREFETCH=False, SPLIT=1),
    dict(BLOCK_N=16, BLOCK_K=16, LATE=False, PREFETCH=False, SPLIT=2))
F32, BF16 = (torch.float32, 2e-5), (torch.bfloat16, 3e-2)
MHA, GQA_WINDOW, ODD_WIDTH = (64, 4, 4, None), (64, 4, 2, 5), (80, 5, 1, None)   # dim, heads, kv heads, window
# Each feature in both dtypes, without the full product (the interpreter takes seconds per case).
CASES = [(F32, MHA, 3, PLAIN), (BF16, MHA, 3, PLAIN), (F32, GQA_WINDOW, 3, LATE), (BF16, GQA_WINDOW, 1, LATE),
         (F32, ODD_WIDTH, 1, LATE_PF), (BF16, ODD_WIDTH, 3, LATE_PF), (F32, GQA_WINDOW, 1, PF), (BF16, MHA, 1, PF),
         (F32, ODD_WIDTH, 1, LATE), (F32, MHA, 1, PLAIN), (F32, ODD_WIDTH, 1, SPLIT), (BF16, GQA_WINDOW, 3, SPLIT),
         (F32, MHA, 3, SPLIT_PF), (BF16, ODD_WIDTH, 1, SPLIT_PF), (F32, ODD_WIDTH, 3, DOT), (BF16, GQA_WINDOW, 3, DOT),
         (F32, MHA, 3, DOT_SPLIT), (BF16, ODD_WIDTH, 3, DOT_SPLIT)]


@pytest.fixture
def kernels(request) -> KernelConfig:
    """Kernels that run with one block shape, in the interpreter and on CUDA (no autotuning)."""
    return KernelConfig(block_shape=lambda *_: request.param)


def _case_id(case):
    (dtype, _), (dim, heads, kv, window), batch, shape = case
    kind = "-".join(k.lower() for k in ("LATE", "PREFETCH") if shape[k]) or "per-tile"
    kind += "-dot" if batch > 1 and min(shape["BLOCK_N"], shape["BLOCK_K"]) >= 16 else ""
    kind += f"-split{shape['SPLIT']}" if shape["SPLIT"] > 1 else ""
    return f"{str(dtype)[6:]}-d{dim}h{heads}kv{kv}w{window}-b{batch}-{kind}"


@pytest.mark.parametrize("dtype_tol,stack,batch,kernels", CASES, indirect=["kernels"],
                         ids=[_case_id(c) for c in CASES])
def test_block_step_equals_eager_block(dtype_tol, stack, batch, kernels):
    (dtype, tol), (dim, heads, n_kv_heads, window) = dtype_tol, stack
    cfg = _cfg(dim, heads, n_kv_heads=n_kv_heads, sliding_window=window)
    block = _randomise(Block(cfg)).to(DEVICE, dtype).eval()
    B, L, D = batch, 24, cfg.head_dim                                   # dim 80: K not a power of two
    g = torch.Generator().manual_seed(2)
    caches = [KVCache(B, n_kv_heads, L, D, dtype, DEVICE) for _ in range(2)]
    caches[0].k.copy_(torch.randn(caches[0].k.shape, generator=g))
    caches[0].v.copy_(torch.randn(caches[0].v.shape, generator=g))
    caches[1].k.copy_(caches[0].k)
    caches[1].v.copy_(caches[0].v)
    cos, sin = rope_tables(torch.arange(L, device=DEVICE), D, cfg.rope_theta, dtype)
    pos = torch.tensor([0, 9, 23][-B:], device=DEVICE)                   # rows at their own positions
    x = torch.randn(B, 1, dim, generator=g).to(DEVICE, dtype)
    with torch.no_grad():
        ref = block(x, cos[pos][:, None, None], sin[pos][:, None, None], step_mask(pos, L, window), caches[0], pos)
        out = dk.block_step(block, x, pos, caches[1], cos, sin, window, kernels)
    assert out.shape == ref.shape and out.dtype == dtype
    scale = ref.float().abs().max()
    assert (out.float() - ref.float()).abs().max() <= tol * scale
    for a, b in ((caches[0].k, caches[1].k), (caches[0].v, caches[1].v)):   # the new keys written at pos
        assert (a.float() - b.float()).abs().max() <= tol * a.float().abs().max()
    for _, cnt in dk._WORKSPACES.values():                   # split counters left at zero for the next launch
        assert not cnt.any()
    for cnt in dk._COUNTERS.values():                        # and the attention's arrival counters
        assert not cnt.any()


@pytest.mark.parametrize("rows,n_slots", [(2, 2), (1, 2), (1, 3)])
@pytest.mark.parametrize("dtype,tol,kernels", [(*F32, PLAIN), (*BF16, LATE_PF), (*F32, SPLIT)],
                         indirect=["kernels"])
def test_cross_step_equals_eager_cross_attention(dtype, tol, kernels, rows, n_slots):
    """Several rows: the attention's own launch, then the output projection. One row: the
    attention over the slots inside the output projection's programs (cross_in_output), and
    without it; a slot count that is not a power of two is masked."""
    cross = _randomise(CrossAttention(_cfg(n_kv_heads=2))).to(DEVICE, dtype).eval()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(rows, 1, 64, generator=g).to(DEVICE, dtype)
    slots = torch.randn(rows, n_slots, 64, generator=g).to(DEVICE, dtype)     # the patch's k slots
    with torch.no_grad():
        k, v = cross.kv(slots)
        ref = x + cross.attend(x, k, v)
        out = dk.cross_step(cross, x, k.contiguous(), v.contiguous(), kernels)
        apart = dk.cross_step(cross, x, k.contiguous(), v.contiguous(), replace(kernels, cross_in_output=False))
    for o in (out, apart):
        assert (o.float() - ref.float()).abs().max() <= tol * ref.float().abs().max()


@pytest.mark.parametrize("kernels", [DOT, DOT_SPLIT], indirect=True, ids=["dot", "dot-split"])
def test_residual_launches_hand_their_rows_sums_of_squares_on(kernels):
    """Several rows: a residual launch returns its rows' sums of squares in parts (when K is split
    among programs, from the last program of each block), and a norm given them gives what it
    gives computing them itself."""
    g = torch.Generator().manual_seed(5)
    B, K, N = 3, 80, 64
    x, res = torch.randn(B, K, generator=g).to(DEVICE), torch.randn(B, N, generator=g).to(DEVICE)
    w, w2 = (torch.randn(n, k, generator=g).to(DEVICE) * 0.1 for n, k in ((N, K), (96, N)))
    out, stats = dk.matvec(x, w, dk.RESIDUAL, res=res, config=kernels, stats=True)
    assert dk.matvec(x, w, config=kernels, stats=True)[1] is None           # no residual epilogue: none
    assert stats.shape == (16, N // kernels.block_shape()["BLOCK_N"])
    assert torch.allclose(stats[:B].sum(1), out.float().pow(2).sum(1), rtol=1e-5)
    norm = SimpleNamespace(weight=torch.rand(N, generator=g).to(DEVICE) + 0.5, eps=1e-5)
    handed = dk.matvec(out, w2, norm=norm, config=kernels, x_stats=stats)
    own = dk.matvec(out, w2, norm=norm, config=kernels)
    assert torch.allclose(handed, own, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(DEVICE != "cuda", reason="the interpreter runs programs one after another")
def test_cuda_split_sums_are_the_same_every_launch():
    """K split in 8 shares among programs that finish in any order: the last program of each
    block adds the shares' partial sums in share order, so every launch gives the same bits (float
    adds in arrival order would not: float32 results show every rounding), and the product is
    x @ w.T."""
    g = torch.Generator().manual_seed(7)
    B, K, N = 8, 2048, 512
    x = torch.randn(B, K, generator=g).to(DEVICE)
    w = (torch.randn(N, K, generator=g) * 0.05).to(DEVICE)
    config = KernelConfig(block_shape=lambda *_: dict(BLOCK_N=16, BLOCK_K=64, LATE=False, PREFETCH=False, SPLIT=8))
    first = dk.matvec(x, w, config=config)
    for _ in range(50):
        assert torch.equal(dk.matvec(x, w, config=config), first)
    ref = x.double() @ w.double().T
    assert (first.double() - ref).abs().max() <= 1e-4 * ref.abs().max()


@pytest.mark.parametrize("kernels", [DOT], indirect=True)
def test_stack_step_equals_eager_layers(kernels):
    """A decoder-like stack, a cross-attention before its first layer, 3 rows: each launch's
    statistics go to the next norm, and the result is the eager layers'."""
    cfg = _cfg(64, 4, n_kv_heads=2)
    torch.manual_seed(6)
    layers = [_randomise(Block(cfg)).to(DEVICE).eval() for _ in range(2)]
    cross = _randomise(CrossAttention(cfg)).to(DEVICE).eval()
    B, L, D = 3, 24, cfg.head_dim
    g = torch.Generator().manual_seed(7)
    caches = [[KVCache(B, 2, L, D, torch.float32, DEVICE) for _ in layers] for _ in range(2)]
    for c0, c1 in zip(*caches):
        for name in ("k", "v"):
            getattr(c0, name).copy_(torch.randn(getattr(c0, name).shape, generator=g))
            getattr(c1, name).copy_(getattr(c0, name))
    cos, sin = rope_tables(torch.arange(L, device=DEVICE), D, cfg.rope_theta, torch.float32)
    pos = torch.tensor([0, 9, 23], device=DEVICE)
    x = torch.randn(B, 1, 64, generator=g).to(DEVICE)
    slots = torch.randn(B, 2, 64, generator=g).to(DEVICE)
    with torch.no_grad():
        k, v = cross.kv(slots)
        ref = x + cross.attend(x, k, v)
        for layer, cache in zip(layers, caches[0]):
            ref = layer(ref, cos[pos][:, None, None], sin[pos][:, None, None], step_mask(pos, L, None), cache, pos)
        out = dk.stack_step(layers, caches[1], x, pos, cos, sin, None, kernels,
                            crosses=[(cross, k.contiguous(), v.contiguous())])
    assert out.shape == ref.shape
    assert (out - ref).abs().max() <= 2e-5 * ref.abs().max()


@pytest.mark.parametrize("kernels", [DOT], indirect=True)
@pytest.mark.parametrize("B,layers", [(1, 2), (3, 2), (1, 1)])
def test_decoder_slots_write_the_eager_keys_and_values_where_kept(kernels, B, layers):
    """The decoder's cross-attention slots of a global output: every layer's cache takes the
    eager kv of the slots in the rows kept, and the other rows' caches keep every value (one
    cross-attention layer too: decoder_cross_attn_all_layers off)."""
    cfg, k, Cg = _cfg(64, 4, n_kv_heads=2), 2, 48
    torch.manual_seed(8)
    decoder = SimpleNamespace(k=k, patch_embedding_projection=_randomise(torch.nn.Linear(Cg, 64 * k, bias=False)),
                              cross_attn_layers=[_randomise(CrossAttention(cfg)) for _ in range(layers)])
    for m in [decoder.patch_embedding_projection, *decoder.cross_attn_layers]:
        m.to(DEVICE).eval()
    g = torch.Generator().manual_seed(9)
    out = torch.randn(B, 1, Cg, generator=g).to(DEVICE)
    keep = torch.tensor([True, False, True][:B], device=DEVICE)
    caches = [KVCache(B, 2, k, cfg.head_dim, torch.float32, DEVICE) for _ in decoder.cross_attn_layers]
    for c in caches:
        c.k.copy_(torch.randn(c.k.shape, generator=g))
        c.v.copy_(torch.randn(c.v.shape, generator=g))
    before = [(c.k.clone(), c.v.clone()) for c in caches]
    with torch.no_grad():
        dk.decoder_slots(decoder, out, caches, keep, kernels)
        slots = decoder.patch_embedding_projection(out).reshape(B, k, 64)
        for c, cross, (k0, v0) in zip(caches, decoder.cross_attn_layers, before):
            ref_k, ref_v = cross.kv(slots)
            for got, ref, old in ((c.k, ref_k, k0), (c.v, ref_v, v0)):
                assert torch.equal(got[~keep], old[~keep])
                assert (got[keep] - ref[keep]).abs().max() <= 2e-5 * ref.abs().max()


@pytest.mark.parametrize("kernels", [DOT_SPLIT], indirect=True)
def test_a_launch_over_several_layers_refuses_to_split_k(kernels):
    """decoder_slots launches once for all layers, with one arrival counter per block of
    outputs: a block shape that would split K there is refused rather than let layers race."""
    cfg, k = _cfg(64, 4, n_kv_heads=2), 2
    decoder = SimpleNamespace(k=k, patch_embedding_projection=torch.nn.Linear(48, 64 * k, bias=False).to(DEVICE),
                              cross_attn_layers=[CrossAttention(cfg).to(DEVICE) for _ in range(2)])
    caches = [KVCache(1, 2, k, cfg.head_dim, torch.float32, DEVICE) for _ in range(2)]
    keep = torch.ones(1, dtype=torch.bool, device=DEVICE)
    with torch.no_grad(), pytest.raises(ValueError, match="cannot split K"):
        dk.decoder_slots(decoder, torch.zeros(1, 1, 48, device=DEVICE), caches, keep, kernels)


@pytest.mark.parametrize("kernels", [PLAIN, DOT], indirect=True, ids=["one-row-shape", "dot"])
def test_kv_at_writes_each_rows_byte_at_its_position(kernels):
    """The encoder's byte for the pooling: k_norm, k/v projection, written at each row's own
    position; every other position keeps its value."""
    cfg, B, L = _cfg(64, 4, n_kv_heads=2), 3, 12
    cross = _randomise(CrossAttention(cfg)).to(DEVICE).eval()
    g = torch.Generator().manual_seed(10)
    h = torch.randn(B, 64, generator=g).to(DEVICE)
    cache = KVCache(B, 2, L, cfg.head_dim, torch.float32, DEVICE)
    cache.k.copy_(torch.randn(cache.k.shape, generator=g))
    cache.v.copy_(torch.randn(cache.v.shape, generator=g))
    before = cache.k.clone(), cache.v.clone()
    pos = torch.tensor([0, 7, 11], device=DEVICE)
    with torch.no_grad():
        dk.kv_at(cross, h, cache, pos, kernels)
        ref_k, ref_v = cross.kv(h[:, None])                                 # (B, Hkv, 1, D)
    at = torch.zeros(B, L, dtype=torch.bool, device=DEVICE)
    at[torch.arange(B), pos] = True
    for got, old, ref in ((cache.k, before[0], ref_k), (cache.v, before[1], ref_v)):
        assert torch.equal(got.transpose(1, 2)[~at], old.transpose(1, 2)[~at])
        new = got.transpose(1, 2)[at]                                       # (B, Hkv, D) in row order
        assert (new - ref[:, :, 0]).abs().max() <= 2e-5 * ref.abs().max()


@pytest.mark.parametrize("kernels", [DOT], indirect=True)
@pytest.mark.parametrize("B", [1, 3])
def test_pool_patch_equals_the_eager_pooling(kernels, B):
    """The open patch's k slots over its bytes' cached keys (start..pos only): the eager
    projection and masked cross-attention, q + (q + o(attention)); keys outside the patch are
    poisoned, so reading them would show."""
    cfg, L, k = _cfg(64, 4, n_kv_heads=2), 16, 2
    torch.manual_seed(11)
    encoder = SimpleNamespace(k=k, patch_embedding_projection=_randomise(torch.nn.Linear(64, 64 * k, bias=False)),
                              cross_attn_layers=[_randomise(CrossAttention(cfg))])
    for m in [encoder.patch_embedding_projection, *encoder.cross_attn_layers]:
        m.to(DEVICE).eval()
    g = torch.Generator().manual_seed(12)
    pooled = torch.randn(B, 64, generator=g).to(DEVICE)
    cache = KVCache(B, 2, L, cfg.head_dim, torch.float32, DEVICE)
    cache.k.copy_(torch.randn(cache.k.shape, generator=g) * 3)
    cache.v.copy_(torch.randn(cache.v.shape, generator=g))
    pos, start = torch.tensor([9, 0, 15][:B], device=DEVICE), torch.tensor([4, 0, 15][:B], device=DEVICE)
    j = torch.arange(L, device=DEVICE)
    in_patch = (j[None] >= start[:, None]) & (j[None] <= pos[:, None])
    with torch.no_grad():
        q = encoder.patch_embedding_projection(pooled).reshape(B, k, 64)
        ref = (q + encoder.cross_attn_layers[0].attend(q, cache.k, cache.v, in_patch[:, None, None, :])).reshape(B, -1)
        cache.k[~in_patch[:, None, :, None].expand_as(cache.k)] = 1e4
        cache.v[~in_patch[:, None, :, None].expand_as(cache.v)] = float("nan")
        out = dk.pool_patch(encoder, pooled, cache, pos, start, kernels)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() <= 2e-5 * ref.abs().max()


@pytest.mark.parametrize("kernels", [PLAIN], indirect=True)
def test_norm_head_is_the_final_norm_and_head(kernels):
    """The decoder's final RMSNorm and the byte head in one launch."""
    g = torch.Generator().manual_seed(13)
    x = torch.randn(1, 64, generator=g).to(DEVICE)
    head = _randomise(torch.nn.Linear(64, 260, bias=False)).to(DEVICE)
    norm = SimpleNamespace(weight=torch.rand(64, generator=g).to(DEVICE) + 0.5, eps=1e-5)
    with torch.no_grad():
        ref = head(x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm.eps) * norm.weight)
        out = dk.norm_head(x, norm, head.weight, kernels)
    assert out.shape == (1, 260)
    assert (out - ref).abs().max() <= 2e-5 * ref.abs().max()
    into = torch.full((1, 260), float("nan"), device=DEVICE)              # bf16 results into float32 logits
    with torch.no_grad():
        bf = dk.norm_head(x.bfloat16(), norm, head.weight.bfloat16(), kernels)
        dk.norm_head(x.bfloat16(), norm, head.weight.bfloat16(), kernels, out=into)
    assert torch.equal(into, bf.float())


def test_attention_reads_only_the_window_and_the_valid_keys():
    """Keys after pos or outside the window must not count: poison them and compare."""
    g = torch.Generator().manual_seed(4)
    B, H, L, D = 2, 2, 40, 16
    q = torch.randn(B, H * D, generator=g).to(DEVICE)
    k, v = (torch.randn(B, H, L, D, generator=g).to(DEVICE) for _ in range(2))
    pos, window = torch.tensor([5, 30], device=DEVICE), 8
    y = dk.attention(q, k, v, H, pos, window, splits=4, block=4)
    k2, v2 = k.clone(), v.clone()
    for b, p in enumerate(pos.tolist()):
        keep = torch.zeros(L, dtype=torch.bool)
        keep[max(0, p - window + 1):p + 1] = True
        k2[b, :, ~keep], v2[b, :, ~keep] = 1e4, float("nan")
    assert torch.equal(dk.attention(q, k2, v2, H, pos, window, splits=4, block=4), y)
    mask = step_mask(pos, L, window)
    ref = torch.nn.functional.scaled_dot_product_attention(q.view(B, H, 1, D), k, v, attn_mask=mask)
    assert torch.allclose(y, ref.reshape(B, H * D), atol=1e-5)


@pytest.mark.parametrize("min_keys", [1, 3, 8])
def test_attention_shares_keys_among_only_as_many_programs_as_min_keys_gives(min_keys):
    """KernelConfig.attention_min_keys: rows of 2, 6 and 31 valid keys over 4 programs per head
    take 1-4 of them (keys after pos poisoned); each row's merge waits for just its shares, the
    same as all 4 programs and as SDPA, and the arrival counters are left at zero (a second call
    gives the same)."""
    g = torch.Generator().manual_seed(6)
    B, H, L, D = 3, 2, 40, 16
    q = torch.randn(B, H * D, generator=g).to(DEVICE)
    k, v = (torch.randn(B, H, L, D, generator=g).to(DEVICE) for _ in range(2))
    pos = torch.tensor([1, 5, 30], device=DEVICE)
    k2, v2 = k.clone(), v.clone()
    for b, p in enumerate(pos.tolist()):
        k2[b, :, p + 1:], v2[b, :, p + 1:] = 1e4, float("nan")
    config = KernelConfig(attention_min_keys=min_keys)
    y = dk.attention(q, k2, v2, H, pos, splits=4, block=4, config=config)
    assert torch.equal(dk.attention(q, k2, v2, H, pos, splits=4, block=4, config=config), y)
    ref = torch.nn.functional.scaled_dot_product_attention(q.view(B, H, 1, D), k, v,
                                                           attn_mask=step_mask(pos, L, None))
    assert torch.allclose(y, ref.reshape(B, H * D), atol=1e-5)
    assert torch.allclose(y, dk.attention(q, k2, v2, H, pos, splits=4, block=4), atol=1e-6)


def test_attention_splits_are_shared_among_rows_as_powers_of_two():
    """Each row count gets a power of two (the merge's tile must be one), fewer per head as rows
    grow, never under the minimum nor over the configured splits; 3 rows once gave 10 and failed
    to compile on the GPU."""
    config = KernelConfig()
    got = [dk.attention_splits(config, B) for B in range(1, 17)]
    assert got[:8] == [32, 16, 8, 8, 8, 8, 8, 8] and set(got[8:]) == {8}
    assert dk.attention_splits(KernelConfig(attention_splits=2), 3) == 2
    assert dk.attention_splits(KernelConfig(attention_splits=24, attention_min_splits=4), 1) == 16


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_patch_pooling_reads_only_the_open_patchs_bytes(kv_heads):
    """The encoder's pooling step: k queries per row over cached byte states start..pos (the
    open patch) through the kernel, each (head, query) pair as a head of its own, equal to the
    masked SDPA over the whole cache; keys outside the patch are poisoned and must not count."""
    cross = _randomise(CrossAttention(_cfg(n_kv_heads=kv_heads))).to(DEVICE).eval()
    g = torch.Generator().manual_seed(5)
    B, L = 3, 40
    x = torch.randn(B, 2, 64, generator=g).to(DEVICE)                    # k = 2 queries per row
    states = torch.randn(B, L, 64, generator=g).to(DEVICE)
    pos, start = torch.tensor([5, 30, 0], device=DEVICE), torch.tensor([2, 19, 0], device=DEVICE)
    with torch.no_grad():
        k, v = (t.contiguous() for t in cross.kv(states))
        j = torch.arange(L, device=DEVICE)
        in_patch = (j[None] >= start[:, None]) & (j[None] <= pos[:, None])
        ref = cross.attend(x, k, v, in_patch[:, None, None, :])
        k2, v2 = k.clone(), v.clone()
        k2[~in_patch[:, None].expand_as(k2[..., 0])], v2[~in_patch[:, None].expand_as(v2[..., 0])] = 1e4, float("nan")
        mask = CachedAttention(dk.cached_attention, pos, None, start)
        out = cross.attend(x, k2, v2, mask)
    assert torch.allclose(out, ref, atol=1e-5)


# In the interpreter a byte takes seconds: on the CPU only the host-stepped path, a few bytes.
FAST_PATHS = [dict(), dict(speculative=True), dict(cuda_graphs=True, compile=True)] if DEVICE == "cuda" else [dict()]
# Fewer, larger programs on the CPU: the interpreter pays per program.
INTERPRETED = KernelConfig(attention_splits=2, block_shape=lambda *_: dict(BLOCK_N=32, BLOCK_K=64, LATE=False,
                                                                           PREFETCH=False, SPLIT=1))


@pytest.mark.parametrize("fast", FAST_PATHS, ids=lambda d: "-".join(d) or "host-steps")
def test_generation_with_fused_kernels_equals_eager(tiny_model, fast):
    """Whole models: every layer step through the fused kernels (entropy model, encoder, global,
    decoder with its cross-attention), rows of different lengths, same bytes and patches as eager;
    then other prompts of the same shapes through the session the first call left (sessions.py)."""
    model = tiny_model.to(DEVICE)
    prompts, others = ["Hello there", "The quick brown fox"], ["Hello world", "The quick brown cat"]
    kw = dict(max_new_bytes=8 if DEVICE == "cpu" else 48, stop_at_eos=False)
    options = DecodeOptions(kernels=True, **fast, **({"kernel_config": INTERPRETED} if DEVICE == "cpu" else {}))
    fused = model.generate(prompts, options=options, **kw)
    kept = sessions.kept(model)
    fused += model.generate(others, options=options, **kw)
    assert sessions.kept(model) is kept
    eager = model.generate(prompts, **kw) + model.generate(others, **kw)
    for f, e in zip(fused, eager):
        assert f.bytes == e.bytes and f.patch_starts == e.patch_starts
        assert max(abs(a - b) for a, b in zip(f.entropies, e.entropies)) < 1e-4
    sessions.release(model)
    model.to("cpu")


def test_batch_engine_rows_on_the_fused_kernels_equal_eager_alone(tiny_model):
    """The batch engine's rows through the fused kernels (its row views share the stepper's
    caches and slot tables), one row joining after the other has run a few bytes, with the
    speculative step (every byte's global step, kept where a patch completed) and, on CUDA, the
    host-decided one too: each row gives its eager bytes alone."""
    from blt_core.generation.batching import BatchEngine
    from blt_core.patching import PatchingParams
    from blt_core.sampling import SamplingParams
    model = tiny_model.to(DEVICE)
    params = SamplingParams(max_new_bytes=6 if DEVICE == "cpu" else 32, stop_at_eos=False)
    for fast in ([dict(speculative=True)] if DEVICE == "cpu" else FAST_PATHS[:2]):
        options = DecodeOptions(kernels=True, **fast, **({"kernel_config": INTERPRETED} if DEVICE == "cpu" else {}))
        engine = BatchEngine(model, slots=2, options=options)
        try:
            jobs = [("Hello there", PatchingParams(mode="static", patch_size=3)),
                    ("The quick brown fox", PatchingParams())]
            first = engine.submit(jobs[0][0], params, jobs[0][1])
            events = [next(first) for _ in range(3)]
            second = engine.submit(jobs[1][0], params, jobs[1][1])
            results = [list(first)[-1], list(second)[-1]]
        finally:
            engine.stop()
        assert len(events) == 3
        for (prompt, patching), result in zip(jobs, results):
            alone = model.generate(prompt, patching=patching, **vars(params))
            assert result.bytes == alone.bytes and result.patch_starts == alone.patch_starts, (fast, prompt)
    model.to("cpu")


def test_unsupported_head_width_is_refused():
    cfg = _cfg(48, 4)                                                    # head width 12
    with pytest.raises(ValueError, match="power of two"):
        dk.check_head_dims({"global": cfg})
    dk.check_head_dims({"global": _cfg(64, 4)})
