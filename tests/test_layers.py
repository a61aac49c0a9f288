"""Block-wise sliding-window attention, and the patch cross-attentions computed per group,
equal one dense masked call."""
import pytest
import torch

from blt_core.layers import CrossAttention, Stack, attend, bytes_per_patch, causal_mask, patch_sums, windowed_attend
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


@pytest.mark.parametrize("window", [None, 3])
def test_a_cached_attention_step_equals_the_masked_step(window):
    """A decoding step whose attention is given as a per-row function (the CUDA kernel's place,
    here a plain reference over each row's valid keys) equals the dense masked step."""
    from blt_core.generation.stepper import step_mask
    from blt_core.layers import Attention, CachedAttention, KVCache, rope_tables

    torch.manual_seed(0)
    cfg = StackConfig(dim=32, n_layers=1, n_heads=4, n_kv_heads=2, intermediate_size=64,
                      sliding_window=window)
    attn = Attention(cfg).eval()
    B, L = 3, 10
    pos = torch.tensor([2, 7, 9])
    cos, sin = rope_tables(pos, cfg.head_dim, 10000.0, torch.float32)
    cos, sin = cos[:, None, None], sin[:, None, None]
    x = torch.randn(B, 1, cfg.dim)

    def reference(q, k, v, pos, n_heads, window):      # q (B, H * D), one row at a time
        rows = []
        for b in range(q.shape[0]):
            lo = max(0, int(pos[b]) + 1 - window) if window else 0
            kb, vb = k[b:b + 1, :, lo:pos[b] + 1], v[b:b + 1, :, lo:pos[b] + 1]
            rows.append(attend(q[b].view(1, n_heads, 1, -1), kb, vb).reshape(1, -1))
        return torch.cat(rows)

    caches = []
    for _ in range(2):
        cache = KVCache(B, cfg.n_kv_heads, L, cfg.head_dim, torch.float32, "cpu")
        torch.manual_seed(1)
        cache.k.normal_(), cache.v.normal_()
        caches.append(cache)
    with torch.no_grad():
        dense = attn(x, cos, sin, step_mask(pos, L, window), caches[0], pos)
        given = attn(x, cos, sin, CachedAttention(reference, pos, window), caches[1], pos)
    torch.testing.assert_close(given, dense)
    torch.testing.assert_close(caches[1].k, caches[0].k)


def dense_group_attention(cross, queries, states, query_groups, key_groups):
    """transformers' form: every query over every key, an additive mask admitting its own group."""
    same = query_groups[:, :, None] == key_groups[:, None, :]
    mask = torch.zeros(same.shape, dtype=queries.dtype).masked_fill(~same, torch.finfo(queries.dtype).min)
    return cross.attend(queries, *cross.kv(states), mask[:, None])


def patched_bytes(T=60, k=2, empty=2):
    """Random patches of T bytes: patch_ids (B, T), and the patch of each of P*k slots, the last
    `empty` patches without bytes (as the trainer's padded patch axis has)."""
    starts = torch.rand(2, T) < 0.3
    starts[:, 0] = True
    patch_ids = starts.long().cumsum(1) - 1
    P = int(patch_ids.max()) + 1 + empty
    return patch_ids, torch.arange(P).repeat_interleave(k).expand(2, -1), P


@pytest.mark.parametrize("n_kv_heads", [4, 2])
def test_patch_slots_over_their_bytes_equal_the_masked_dense_attention(n_kv_heads):
    """The encoder's form (each slot over its patch's bytes), output and gradients, float64;
    slots of empty patches (0 instead of the mean of all bytes) left out, as no logit reads them."""
    torch.manual_seed(n_kv_heads)
    cross = CrossAttention(StackConfig(64, 1, 4, n_kv_heads=n_kv_heads)).double()
    patch_ids, slot_patch, P = patched_bytes()
    slots = torch.randn(2, P * 2, 64, dtype=torch.double, requires_grad=True)
    states = torch.randn(2, 60, 64, dtype=torch.double, requires_grad=True)
    real = (slot_patch <= patch_ids.max(1, keepdim=True).values)[..., None]
    weights = torch.randn(2, P * 2, 64, dtype=torch.double) * real
    dense = dense_group_attention(cross, slots, states, slot_patch, patch_ids)
    grouped = cross.attend_patches(slots, states, patch_ids, 2)
    torch.testing.assert_close(grouped * real, dense * real, atol=1e-12, rtol=0)
    assert (grouped[~real.expand_as(grouped)] == slots[~real.expand_as(slots)]).all()   # empty patch: 0 + slot
    inputs = [slots, states, *cross.parameters()]
    for a, b in zip(torch.autograd.grad((grouped * weights).sum(), inputs),
                    torch.autograd.grad((dense * weights).sum(), inputs)):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


@pytest.mark.parametrize("n_kv_heads", [4, 2])
def test_bytes_over_their_patch_slots_equal_the_masked_dense_attention(n_kv_heads):
    """The decoder's form (each byte over the k slots of one patch), output and gradients, float64."""
    torch.manual_seed(n_kv_heads)
    cross = CrossAttention(StackConfig(64, 1, 4, n_kv_heads=n_kv_heads)).double()
    patch_ids, slot_patch, P = patched_bytes()
    h = torch.randn(2, 60, 64, dtype=torch.double, requires_grad=True)
    slots = torch.randn(2, P * 2, 64, dtype=torch.double, requires_grad=True)
    selected = cross.attend_selected(h, *cross.kv(slots), patch_ids[..., None] * 2 + torch.arange(2))
    dense = dense_group_attention(cross, h, slots, patch_ids, slot_patch)
    torch.testing.assert_close(selected, dense, atol=1e-12, rtol=0)
    weights, inputs = torch.randn_like(dense), [h, slots, *cross.parameters()]
    for a, b in zip(torch.autograd.grad((selected * weights).sum(), inputs),
                    torch.autograd.grad((dense * weights).sum(), inputs)):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_rope_tables_are_made_once_and_equal_the_computed_ones():
    """Stack keeps cos/sin of its trained positions (so torch.compile does not recompute sines in
    every layer); slices of them, and positions past them, equal rope_tables computed directly."""
    from blt_core.layers import rope_tables
    cfg = StackConfig(32, 1, 4, intermediate_size=64, max_seq_len=64, rope_theta=500.0)
    stack = Stack(cfg)
    assert "rope_cos" not in stack.state_dict()                         # not saved in checkpoints
    for start, T in ((0, 64), (5, 20), (60, 10), (100, 3)):            # the last two go past the table
        want = rope_tables(torch.arange(start, start + T), cfg.head_dim, cfg.rope_theta, torch.bfloat16)
        got = stack.rope(T, torch.device("cpu"), torch.bfloat16, start)
        assert all(torch.equal(g, w) for g, w in zip(got, want)) and got[0].shape == (T, cfg.head_dim)


def test_a_model_loaded_from_meta_gets_real_rope_tables(tmp_path):
    from blt_core.blt import BLT
    from blt_core.config import preset
    torch.manual_seed(0)
    model = BLT(preset("blt-tiny"))
    model.save_pretrained(tmp_path)
    loaded = BLT.from_pretrained(tmp_path)                              # built on meta, then assigned
    for ours, theirs in zip(model.modules(), loaded.modules()):
        if isinstance(ours, Stack):
            assert not theirs.rope_cos.is_meta and torch.equal(ours.rope_cos, theirs.rope_cos)
    ids = torch.tensor([list(b"rope tables")]) + 4
    assert torch.equal(model.eval()(ids), loaded(ids))


def test_patch_sums_add_each_patchs_positions_in_order():
    """Against a loop over patches (float64, so the order cannot hide a wrong position), on the
    position axis in the middle of the shape; patches past a row's last one are empty: 0."""
    torch.manual_seed(0)
    patch_ids, _, P = patched_bytes(empty=2)
    x = torch.randn(2, 3, patch_ids.shape[1], 4, dtype=torch.double)
    out = patch_sums(x, bytes_per_patch(patch_ids, P), 2)
    assert out.shape == (2, 3, P, 4)
    for b in range(2):
        assert bytes_per_patch(patch_ids, P)[b].tolist() == [int((patch_ids[b] == p).sum()) for p in range(P)]
        for p in range(P):
            torch.testing.assert_close(out[b, :, p], x[b, :, patch_ids[b] == p].sum(1), atol=1e-12, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("pooling", ["cross_attention", "mean"])
def test_the_encoders_patches_are_the_same_on_every_cuda_run(pooling):
    """The prefill's pooling sums several bytes per patch: added with atomics (scatter_add) their
    float rounding changed from run to run on CUDA, and with it later greedy bytes."""
    from blt_core import BLT, preset
    from blt_core.patching import start_mask
    torch.manual_seed(0)
    cfg = preset("blt-tiny")
    cfg.encoder_pooling = pooling
    m = BLT(cfg).cuda().eval()
    ids = torch.randint(4, 260, (4, 512), device="cuda")
    starts = start_mask("static", 512, patch_size=4, device="cuda").expand(4, -1)   # patches of 4 bytes
    with torch.no_grad():
        runs = [m.logits(ids, starts) for _ in range(4)]
    assert all(torch.equal(r, runs[0]) for r in runs[1:])
