"""Exactness of cached generation against the recompute-everything reference, batching, sampling."""
import pytest
import torch

from blt_core.generate import IncrementalBLT, _RowState, generate, generate_reference
from blt_core.sampling import SamplingParams, sample_next

PROMPTS = ["Hello there", "The quick brown fox", "x" * 30, "Grüße, 世界"]
MODES = [dict(mode="entropy"), dict(mode="entropy", max_patch_length=3), dict(mode="entropy_monotonic", threshold=0.05),
         dict(mode="static", patch_size=3), dict(mode="space", max_patch_length=2), dict(mode="byte")]


@pytest.mark.parametrize("patching", MODES, ids=lambda d: "-".join(map(str, d.values())))
def test_cached_greedy_equals_full_recompute(tiny_model, patching):
    params = SamplingParams(max_new_bytes=40, stop_at_eos=False)
    ref, used = generate_reference(tiny_model, PROMPTS[0], params, **patching)
    res = tiny_model.generate(PROMPTS[0], max_new_bytes=40, stop_at_eos=False, **patching)
    assert res.bytes == ref and len(ref) == 40
    # per-step logits of the cached path against the full forward
    ids = torch.tensor([tiny_model.tokenizer.encode(PROMPTS[0])])
    inc = IncrementalBLT(tiny_model, 1, ids.shape[1] + 41, **patching)
    logits = inc.prefill(ids, torch.tensor([ids.shape[1]]))
    for byte, expected in zip(ref, used):
        assert (logits[0] - expected).abs().max().item() <= 1e-4
        logits = inc.step(torch.tensor([byte + 4])).logits
    assert 0 < res.global_steps <= 40
    if patching["mode"] == "byte":
        assert res.global_steps == 40


def test_patch_starts_and_entropies_match_the_patcher(tiny_model):
    res = tiny_model.generate(PROMPTS[1], max_new_bytes=30, stop_at_eos=False)
    full = tiny_model.patch(PROMPTS[1].encode() + res.bytes)
    T0 = len(PROMPTS[1].encode()) + 1
    assert res.patch_starts == [s - T0 for s in full.starts if s >= T0]
    torch.testing.assert_close(torch.tensor(res.entropies), torch.tensor(full.entropies[T0:]), atol=1e-4, rtol=0)


@pytest.mark.parametrize("sampling", [dict(), dict(temperature=0.9, top_k=40, top_p=0.95, seed=7, repetition_penalty=1.2)])
def test_batch_equals_concatenated_batch_of_one(tiny_model, sampling):
    batch = tiny_model.generate(PROMPTS, max_new_bytes=25, **sampling)
    for prompt, row in zip(PROMPTS, batch):
        alone = tiny_model.generate(prompt, max_new_bytes=25, **sampling)
        assert row.bytes == alone.bytes and row.stop_reason == alone.stop_reason
        assert row.patch_starts == alone.patch_starts


def test_seeds(tiny_model):
    kw = dict(max_new_bytes=30, temperature=1.0, stop_at_eos=False)
    a, b, c = (tiny_model.generate("Once", seed=s, **kw).bytes for s in (1, 1, 2))
    assert a == b and a != c


def test_top_k_one_is_greedy(tiny_model):
    kw = dict(max_new_bytes=20, stop_at_eos=False)
    assert tiny_model.generate("abc", temperature=0.7, top_k=1, seed=0, **kw).bytes == tiny_model.generate("abc", **kw).bytes


def test_stop_string_is_cut_and_reported(tiny_model):
    free = tiny_model.generate("Hello", max_new_bytes=40, stop_at_eos=False)
    stop = next(ch for ch in free.bytes.decode("utf-8", "replace")[3:] if ch != "\ufffd")
    res = tiny_model.generate("Hello", max_new_bytes=40, stop_at_eos=False, stop=[stop])
    assert res.stop_reason == "stop" and res.bytes == free.bytes[:free.bytes.find(stop.encode())]


def test_max_new_bytes_and_capacity(tiny_model):
    assert tiny_model.generate("a", max_new_bytes=0).bytes == b""
    with pytest.raises(ValueError, match=r"exceeds the .* context of \d+"):
        tiny_model.generate("a", max_new_bytes=10**6)


def test_stream_events_and_utf8_deltas(tiny_model):
    events = list(tiny_model.stream("Hi", max_new_bytes=20, stop_at_eos=False))
    result, events = events[-1], events[:-1]
    assert len(events) == 20 and [e.index for e in events] == list(range(20))
    assert bytes(e.byte for e in events) == result.bytes
    assert [e.index for e in events if e.starts_patch] == result.patch_starts
    assert result.global_steps == sum(e.global_step for e in events)


def test_row_state_emits_only_complete_characters():
    st = _RowState(SamplingParams(max_new_bytes=10))
    deltas = [st.push(b + 4, 1.0, False, False, i).text for i, b in enumerate("é✓a".encode())]
    assert deltas == ["", "é", "", "", "✓", "a"]


@pytest.mark.parametrize("bad", [dict(temperature=float("nan")), dict(temperature=-1), dict(top_p=0), dict(top_p=1.5),
                                 dict(top_k=0), dict(max_new_bytes=True), dict(max_new_bytes=2.5), dict(seed="1"),
                                 dict(repetition_penalty=0), dict(stop=[""])])
def test_bad_sampling_parameters(bad):
    with pytest.raises(ValueError):
        SamplingParams(**bad)


def test_repetition_penalty_lowers_seen_bytes():
    logits = torch.tensor([[0.0] * 4 + [2.0, 1.9, -1.0] + [-5.0] * 253])
    history = torch.tensor([[1, 4]])
    assert sample_next(logits, history, SamplingParams(), None).item() == 4
    assert sample_next(logits, history, SamplingParams(repetition_penalty=1.2), None).item() == 5


def test_greedy_matches_transformers_generate():
    transformers = pytest.importorskip("transformers")
    from blt_core import BLT, preset
    from blt_core.checkpoint import load_hf_state
    from blt_core.config import to_hf_dict
    torch.manual_seed(0)
    hf = transformers.BltForCausalLM(transformers.BltConfig(**to_hf_dict(preset("blt-tiny")))).eval()
    with torch.device("meta"):
        ours = BLT(preset("blt-tiny"))
    load_hf_state(ours, hf.state_dict())
    ids = torch.tensor([ours.tokenizer.encode("Byte Latent Transformer")])
    out = hf.generate(ids, max_new_tokens=24, do_sample=False, use_cache=False, suppress_tokens=[0, 1, 2, 3])
    expected = bytes(i - 4 for i in out[0, ids.shape[1]:].tolist())
    assert ours.eval().generate("Byte Latent Transformer", max_new_bytes=24, stop_at_eos=False).bytes == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graphs_equal_eager_on_gpu():
    from blt_core import BLT, preset
    torch.manual_seed(0)
    m = BLT(preset("blt-tiny")).cuda().eval()
    ids = torch.tensor([m.tokenizer.encode("The quick brown fox")], device="cuda")
    m.config.patching_threshold = float(m.entropies(ids).median())
    for patching in MODES:
        kw = dict(max_new_bytes=48, stop_at_eos=False, **patching)
        eager = m.generate(PROMPTS, **kw)
        graphs = m.generate(PROMPTS, cuda_graphs=True, **kw)
        assert [r.bytes for r in graphs] == [r.bytes for r in eager]
        speculative = m.generate(PROMPTS, cuda_graphs=True, speculative=True, **kw)
        assert [r.bytes for r in speculative] == [r.bytes for r in eager]
        fused = m.generate(PROMPTS, cuda_graphs=True, speculative=True, kernels=True, **kw)
        assert [r.bytes for r in fused] == [r.bytes for r in eager]
        ref, _ = generate_reference(m, PROMPTS[1], SamplingParams(max_new_bytes=48, stop_at_eos=False), **patching)
        assert graphs[1].bytes == ref


@pytest.mark.parametrize("patching", MODES, ids=lambda d: "-".join(map(str, d.values())))
def test_speculative_greedy_equals_host_steps(tiny_model, patching):
    """GreedyGraph's schedule (global step on every byte, kept only where a patch completed, bytes
    read back in chunks) run eagerly on CPU: same bytes, entropies and patch starts, row by row."""
    params = SamplingParams(max_new_bytes=30, stop_at_eos=False)
    fast = generate(tiny_model, PROMPTS, params, speculative=True, **patching)
    slow = generate(tiny_model, PROMPTS, params, speculative=False, **patching)
    for f, s in zip(fast, slow):
        assert f.bytes == s.bytes and f.patch_starts == s.patch_starts and f.global_steps == s.global_steps
        torch.testing.assert_close(torch.tensor(f.entropies), torch.tensor(s.entropies), atol=1e-5, rtol=0)
    ref, _ = generate_reference(tiny_model, PROMPTS[2], params, **patching)
    assert fast[2].bytes == ref


def test_speculative_greedy_stops_at_stop_strings(tiny_model):
    params = SamplingParams(max_new_bytes=40, stop_at_eos=False)
    free = generate(tiny_model, [PROMPTS[0]], params, speculative=True)[0].bytes
    at = next(i for i in range(10, 38) if free[i:i + 2].isascii())     # a stop string inside the 2nd chunk
    stop = free[at:at + 2].decode()
    params = SamplingParams(max_new_bytes=40, stop_at_eos=False, stop=[stop])
    res = generate(tiny_model, [PROMPTS[0]], params, speculative=True)[0]
    assert res.stop_reason == "stop" and res.bytes == free[:free.index(stop.encode())]


def test_compiled_step_equals_eager(tiny_model):
    """torch.compile of the step parts (the CUDA fast path's fusion) gives the same bytes on CPU."""
    kw = dict(max_new_bytes=16, stop_at_eos=False)
    assert tiny_model.generate(PROMPTS[:2], compile=True, **kw)[1].bytes == tiny_model.generate(PROMPTS[1], **kw).bytes


def test_mean_pooling_ablation_generates_exactly():
    from blt_core import BLT, preset
    torch.manual_seed(0)
    m = BLT(preset("blt-tiny", encoder_pooling="mean", patching_mode="static", patch_size=3)).eval()
    assert len(m.local_encoder.cross_attn_layers) == 0
    params = SamplingParams(max_new_bytes=24, stop_at_eos=False)
    ref, _ = generate_reference(m, PROMPTS[1], params)
    assert m.generate(PROMPTS[1], max_new_bytes=24, stop_at_eos=False).bytes == ref


@pytest.mark.parametrize("temperature", [5e-324, 1e-30, 1e-6])
def test_tiny_temperatures_sample_the_argmax_without_overflow(temperature):
    """A temperature just above 0 (found by the API fuzzer: 5e-324 overflowed the logits to inf)."""
    from blt_core.sampling import make_generators
    logits = torch.zeros(2, 260)                            # ids 0-3 are special, bytes are 4..259
    logits[0, 4:8] = torch.tensor([1.0, 3.0, 2.5, -float("inf")])
    logits[1, 4:8] = torch.tensor([0.5, -1.0, 4.25, 0.0])
    params = SamplingParams(max_new_bytes=1, temperature=temperature, top_k=3, top_p=0.9, seed=0)
    out = sample_next(logits, None, params, make_generators(params, 2, torch.device("cpu")))
    assert out.tolist() == [5, 6]


@pytest.mark.parametrize("top_p", [5e-324, 1e-30, 1e-9])
def test_tiny_top_p_keeps_the_most_likely_byte(top_p):
    """top_p just above 0 (found by the API fuzzer: 5e-324 rounds to 0 in float32, which dropped
    every byte and left multinomial nothing to draw from) keeps exactly the most likely byte."""
    from blt_core.sampling import make_generators
    logits = torch.zeros(2, 260)
    logits[0, 4:8] = torch.tensor([1.0, 3.0, 2.5, -float("inf")])
    logits[1, 4:8] = torch.tensor([0.5, -1.0, 4.25, 0.0])
    params = SamplingParams(max_new_bytes=1, temperature=1.0, top_p=top_p, seed=0)
    out = sample_next(logits, None, params, make_generators(params, 2, torch.device("cpu")))
    assert out.tolist() == [5, 6]
