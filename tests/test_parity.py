"""Parity with the peer: transformers' BltForCausalLM, both directions, on CPU in float32.

Each tiny random configuration differs in widths, heads, layers, n-gram sizes, hash functions
and patching settings. The threshold is set between two entropies near the median (at the widest gap in the middle half),
so that both boundary outcomes occur and no entropy sits within float rounding of the threshold.
"""
import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import BltConfig, BltForCausalLM  # noqa: E402

from blt_core import BLT, ByteTokenizer, preset  # noqa: E402

TEXTS = ["Byte Latent Transformers read raw bytes: no tokenizer, no vocabulary.",
         "def f(x):\n    return x ** 2  # 二乘 ✓"]

CONFIGS = {
    "narrow": dict(
        encoder_hash_byte_group_vocab=101, encoder_hash_byte_group_size=[3, 4, 5, 6, 7, 8],
        patcher_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
        encoder_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, hidden_size_global=64),
        decoder_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                            hidden_size_global=64),
        global_config=dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)),
    "gqa_three_hashes_capped": dict(
        encoder_hash_byte_group_vocab=257, encoder_hash_byte_group_size=[2, 4],
        encoder_hash_byte_group_nb_functions=3, max_patch_length=3, cross_attn_k=1,
        patcher_config=dict(hidden_size=48, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
                            intermediate_size=96, rope_parameters={"rope_theta": 1000.0, "rope_type": "default"}),
        encoder_config=dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
                            cross_attn_all_layers=True, cross_attn_k=1, hidden_size_global=96),
        decoder_config=dict(hidden_size=48, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
                            intermediate_size=80, cross_attn_all_layers=False, cross_attn_k=1,
                            hidden_size_global=96),
        global_config=dict(hidden_size=96, num_hidden_layers=1, num_attention_heads=6, intermediate_size=160)),
    "projected_k3": dict(
        encoder_hash_byte_group_vocab=53, encoder_hash_byte_group_size=[3, 5, 8],
        encoder_hash_byte_group_nb_functions=2, cross_attn_k=3,
        patcher_config=dict(hidden_size=40, num_hidden_layers=1, num_attention_heads=5, intermediate_size=72),
        encoder_config=dict(hidden_size=24, num_hidden_layers=1, num_attention_heads=3, cross_attn_k=3,
                            hidden_size_global=56),
        decoder_config=dict(hidden_size=24, num_hidden_layers=2, num_attention_heads=3, intermediate_size=40,
                            cross_attn_k=3, hidden_size_global=56),
        global_config=dict(hidden_size=56, num_hidden_layers=3, num_attention_heads=4, intermediate_size=112)),
    "byte_patches_no_patcher": dict(
        patch_in_forward=False, patching_mode="byte", encoder_hash_byte_group_vocab=31,
        encoder_hash_byte_group_size=[3],
        encoder_config=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, hidden_size_global=32),
        decoder_config=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                            hidden_size_global=32),
        global_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)),
}


def ids_of(text):
    return torch.tensor([ByteTokenizer().encode(text)])


def hf_model(name, seed=0):
    torch.manual_seed(seed)
    model = BltForCausalLM(BltConfig(**CONFIGS[name])).eval()
    if model.model.patcher is not None:
        with torch.no_grad():
            ent = torch.cat([model.model.patcher(ids_of(t))[0][0] for t in TEXTS])
        model.config.patching_threshold = middle_gap_threshold(ent)
    return model


def middle_gap_threshold(entropies: torch.Tensor) -> float:
    """A threshold with boundaries both ways that no entropy is close to: the midpoint of the
    widest gap between sorted entropies in the middle half. (The median itself is one of the
    entropies, so a last-bit difference between implementations could flip its boundary.)"""
    s = entropies.sort().values
    lo, hi = len(s) // 4, 3 * len(s) // 4
    k = lo + int((s[lo + 1:hi + 1] - s[lo:hi]).argmax())
    return float((s[k] + s[k + 1]) / 2)


@pytest.fixture(scope="module", params=list(CONFIGS))
def pair(request, tmp_path_factory):
    hf = hf_model(request.param)
    path = tmp_path_factory.mktemp(request.param)
    hf.save_pretrained(path)
    return request.param, hf, BLT.from_pretrained(path)


def hf_logits(hf, ids):
    with torch.no_grad():
        return hf(ids, use_cache=False).logits


@pytest.mark.parametrize("text", TEXTS)
def test_logits_match_transformers(pair, text):
    name, hf, ours = pair
    ids = ids_of(text)
    ref, out = hf_logits(hf, ids), ours(ids)
    assert out.shape == ref.shape == (1, ids.shape[1], 260)
    diff = (out - ref).abs()
    if hf.config.max_patch_length is not None:
        # transformers drops the trailing "next byte starts a patch" marker when it splits long
        # patches, which changes only the last position's prediction; we keep it (Meta's rule).
        diff = diff[:, :-1]
    assert diff.max().item() <= 1e-4, f"{name}: max |logit diff| {diff.max().item():.2e}"


@pytest.mark.parametrize("text", TEXTS)
def test_entropies_and_patches_match_transformers(pair, text):
    name, hf, ours = pair
    if hf.model.patcher is None:
        pytest.skip("no entropy model in this configuration")
    ids = ids_of(text)
    cfg = hf.config
    with torch.no_grad():
        ref_ent, ref_lengths, _ = hf.model.patcher(ids, patch_size=cfg.patch_size, threshold=cfg.patching_threshold,
                                                   max_patch_length=cfg.max_patch_length)
    torch.testing.assert_close(ours.entropies(ids), ref_ent, atol=1e-4, rtol=0)
    patches = ours.patch(text)
    expected = ref_lengths[0].tolist()
    # transformers marks "the next byte starts a patch" with a trailing zero-length patch, and
    # drops that marker when max_patch_length splits patches.
    ours_hf_layout = patches.lengths + ([0] if patches.next_starts_patch and cfg.max_patch_length is None else [])
    assert ours_hf_layout == expected
    assert sum(patches.lengths) == ids.shape[1]
    assert 1 < patches.count < ids.shape[1], "threshold should give a mix of boundaries"


def test_explicit_patch_lengths_match_transformers(pair):
    name, hf, ours = pair
    ids = ids_of(TEXTS[0])
    T = ids.shape[1]
    lengths = torch.tensor([[1, 5, 2, 7, 1, 3, T - 19, 0]])
    with torch.no_grad():
        ref = hf(ids, patch_lengths=lengths, use_cache=False).logits
    torch.testing.assert_close(ours(ids, patch_lengths=lengths), ref, atol=1e-4, rtol=0)


def test_blt_core_checkpoint_loads_in_transformers(tmp_path):
    cfg = preset("blt-tiny", hash_vocab=211, hash_functions=2, patching_threshold=5.0)
    torch.manual_seed(1)
    ours = BLT(cfg).eval()
    ours.save_pretrained(tmp_path)
    hf = BltForCausalLM.from_pretrained(tmp_path).eval()
    for text in TEXTS:
        ids = ids_of(text)
        with torch.no_grad():
            torch.testing.assert_close(ours(ids), hf_logits(hf, ids), atol=1e-4, rtol=0)


def test_the_shipped_bf16_checkpoint_loads_in_transformers():
    """The default model, shipped in bf16: transformers loads it (as float32) to the same logits
    as blt_core, which loads it as float32 on the CPU."""
    from webapp_helpers import SHIPPED_MODEL
    ours = BLT.from_pretrained(SHIPPED_MODEL)
    assert ours.lm_head.weight.dtype == torch.float32
    hf = BltForCausalLM.from_pretrained(SHIPPED_MODEL, dtype=torch.float32).eval()
    for text in TEXTS:
        ids = ids_of(text)
        with torch.no_grad():
            torch.testing.assert_close(ours(ids), hf_logits(hf, ids), atol=1e-4, rtol=0)
