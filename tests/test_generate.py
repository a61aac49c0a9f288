"""Exactness of cached generation against the recompute-everything reference, batching, sampling."""
import pytest
import torch

from blt_core.generation import DecodeOptions, IncrementalBLT, generate, generate_reference
from blt_core.generation.driver import RowState
from blt_core.patching import PatchingParams
from blt_core.sampling import SamplingParams, sample_next

PROMPTS = ["Hello there", "The quick brown fox", "x" * 30, "Grüße, 世界"]
MODES = [dict(mode="entropy"), dict(mode="entropy", max_patch_length=3), dict(mode="entropy_monotonic", threshold=0.05),
         dict(mode="static", patch_size=3), dict(mode="space", max_patch_length=2), dict(mode="byte")]


@pytest.mark.parametrize("patching", MODES, ids=lambda d: "-".join(map(str, d.values())))
def test_cached_greedy_equals_full_recompute(tiny_model, patching):
    params = SamplingParams(max_new_bytes=40, stop_at_eos=False)
    ref, used = generate_reference(tiny_model, PROMPTS[0], params, PatchingParams(**patching))
    res = tiny_model.generate(PROMPTS[0], max_new_bytes=40, stop_at_eos=False, **patching)
    assert res.bytes == ref and len(ref) == 40
    # per-step logits of the cached path against the full forward
    ids = torch.tensor([tiny_model.tokenizer.encode(PROMPTS[0])])
    inc = IncrementalBLT(tiny_model, 1, ids.shape[1] + 41, PatchingParams(**patching))
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


EVERY_BYTE_A_PATCH = dict(mode="entropy", threshold=-10.0)     # every entropy is above -10 nats
EVERY_BYTE = PatchingParams(**EVERY_BYTE_A_PATCH)


def short_global_context_model(device="cpu"):
    """blt-tiny whose global model takes 64 patches, while its byte-level stacks take 2,048 bytes."""
    from blt_core import BLT, preset
    torch.manual_seed(0)
    cfg = preset("blt-tiny")
    cfg.global_model.max_seq_len = 64
    return BLT(cfg).to(device).eval()


@pytest.fixture(scope="module")
def short_context_model():
    return short_global_context_model()


@pytest.mark.parametrize("patching, prompt", [
    (EVERY_BYTE_A_PATCH, "a" * 100), (dict(mode="entropy_monotonic", threshold=-20.0), "a" * 100),
    (dict(mode="space"), " " * 100), (dict(mode="static", patch_size=1), "a" * 100), (dict(mode="byte"), "a" * 100),
], ids=["entropy", "entropy_monotonic", "space", "static", "byte"])
def test_prompt_with_more_patches_than_the_global_context_is_refused(short_context_model, patching, prompt):
    """101 positions fit the byte-level stacks but make more patches than the global model's
    context: refused before any byte, naming the limit."""
    with pytest.raises(ValueError, match="global model's context of 64 patches"):
        short_context_model.generate(prompt, max_new_bytes=4, **patching)


@pytest.mark.parametrize("max_new_bytes, fits", [(23, True), (24, False)])
def test_static_patches_of_the_new_bytes_are_counted_up_front(short_context_model, max_new_bytes, fits):
    """Static patches are known ahead: BOS + 40 prompt bytes + max_new_bytes one-byte patches
    must fit the global context of 64, else the request is refused before it starts."""
    patching, prompt = dict(mode="static", patch_size=1), "a" * 40
    if not fits:
        with pytest.raises(ValueError, match=r"65 patches in static mode, .* context of 64 patches"):
            short_context_model.generate(prompt, max_new_bytes=max_new_bytes, **patching)
        return
    params = SamplingParams(max_new_bytes=max_new_bytes, stop_at_eos=False)
    res = generate(short_context_model, [prompt], params, PatchingParams(**patching))[0]
    ref, _ = generate_reference(short_context_model, prompt, params, PatchingParams(**patching))
    assert res.stop_reason == "max_new_bytes" and res.bytes == ref


@pytest.mark.parametrize("speculative", [False, True], ids=["host steps", "speculative"])
def test_generation_stops_when_the_global_context_fills(short_context_model, speculative):
    """Entropy patches are not known ahead. With every byte a patch, a prompt of 64 - 9 bytes
    leaves the global model room for 8 more patches; the 9th new byte completes a patch no slot
    can take, so that row stops there with stop_reason 'context', its bytes those of the full
    recompute, while the other row of the batch goes on."""
    m = short_context_model
    prompts = ["a" * 55, "short"]
    params = SamplingParams(max_new_bytes=30, stop_at_eos=False)
    full, short = generate(m, prompts, params, EVERY_BYTE, DecodeOptions(speculative=speculative))
    assert full.stop_reason == "context" and len(full.bytes) == 9 and full.global_steps == 8
    ref, _ = generate_reference(m, prompts[0], SamplingParams(max_new_bytes=9, stop_at_eos=False), EVERY_BYTE)
    assert full.bytes == ref
    alone = generate(m, prompts[1:], params, EVERY_BYTE)[0]
    assert short.stop_reason == "max_new_bytes" and short.bytes == alone.bytes


@pytest.mark.parametrize("which, patching, prompts, cap, positions", [
    ("tiny", PatchingParams(), ["The fox", "jumps over the lazy dog"], 512, 64),
    ("short", PatchingParams(mode="byte"), ["a" * 55], 63, 63),
], ids=["entropy patches, two rows", "byte patches at the global context"])
def test_a_prefill_rounded_up_leaves_each_row_as_the_exact_one(tiny_model, short_context_model, which, patching,
                                                               prompts, cap, positions):
    """The batch engine rounds a prefill's positions up (and every prefill its global patches),
    so new prompt lengths meet shapes met before: the padding is after every row's bytes, so
    each row's logits, patch state and next bytes are those of the prefill without it. Capped
    at the global context: 56 positions rounded to 63, not 64, make at most its 64 patches."""
    from blt_core.generation.driver import right_padded
    from blt_core.generation.stepper import PREFILL_ROUND
    m = tiny_model if which == "tiny" else short_context_model
    rows = [m.tokenizer.encode(p) for p in prompts]
    steppers = []
    for round_to in (1, PREFILL_ROUND):
        inc = IncrementalBLT(m, len(rows), 512, patching)
        ids, lengths = right_padded(rows, "cpu", round_to, cap)
        assert ids.shape[1] == (positions if round_to > 1 else max(map(len, rows)))
        with torch.no_grad():
            inc.prefill(ids, lengths)
        steppers.append(inc)
    exact, rounded = steppers
    for _ in range(12):
        assert torch.allclose(rounded.logits, exact.logits, rtol=1e-5, atol=1e-5)
        for name in ("pos", "n_patches", "global_pos", "next_start", "patch_start", "context_full"):
            assert torch.equal(getattr(rounded, name), getattr(exact, name)), name
        nxt = exact.logits.argmax(-1)
        assert torch.equal(rounded.logits.argmax(-1), nxt)
        with torch.no_grad():
            exact.step(nxt)
            rounded.step(nxt)


def test_stream_events_and_utf8_deltas(tiny_model):
    events = list(tiny_model.stream("Hi", max_new_bytes=20, stop_at_eos=False))
    result, events = events[-1], events[:-1]
    assert len(events) == 20 and [e.index for e in events] == list(range(20))
    assert bytes(e.byte for e in events) == result.bytes
    assert [e.index for e in events if e.starts_patch] == result.patch_starts
    assert result.global_steps == sum(e.global_step for e in events)


def test_row_state_emits_only_complete_characters():
    st = RowState(SamplingParams(max_new_bytes=10))
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
def test_cuda_graphs_equal_eager_on_gpu(monkeypatch):
    from blt_core import BLT, preset
    from blt_core.generation import schedules
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
        for compile, decides in ((False, False), (True, False), (True, True)):   # the decoder before the
            first = m.generate(PROMPTS[:1], options=DecodeOptions(cuda_graphs=True, compile=compile, kernels=True,
                                                                  decoder_first=True, device_decides=decides), **kw)
            assert [(r.bytes, r.global_steps) for r in first] == [(r.bytes, r.global_steps) for r in eager[:1]]
            first = m.generate(PROMPTS, options=DecodeOptions(cuda_graphs=True, compile=compile, kernels=True,
                                                              decoder_first=True, device_decides=decides), **kw)
            assert [(r.bytes, r.global_steps) for r in first] == [(r.bytes, r.global_steps) for r in eager]
        fastest = m.generate(PROMPTS, options=DecodeOptions.fastest("cuda"), **kw)
        assert [r.bytes for r in fastest] == [r.bytes for r in eager]
        ref, _ = generate_reference(m, PROMPTS[1], SamplingParams(max_new_bytes=48, stop_at_eos=False),
                                    PatchingParams(**patching))
        assert graphs[1].bytes == ref
    monkeypatch.setattr(schedules, "SPECULATIVE_FROM", 0.5)     # patches of 2: switching both ways
    kw = dict(max_new_bytes=64, stop_at_eos=False, mode="static", patch_size=2)
    assert [r.bytes for r in m.generate(PROMPTS[:1], options=DecodeOptions.fastest("cuda"), **kw)] == \
        [r.bytes for r in m.generate(PROMPTS[:1], **kw)]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("fast", [dict(cuda_graphs=True), dict(cuda_graphs=True, compile=True),
                                  dict(cuda_graphs=True, speculative=True),
                                  dict(cuda_graphs=True, speculative=True, kernels=True),
                                  dict(cuda_graphs=True, decoder_first=True, kernels=True),
                                  dict(cuda_graphs=True, decoder_first=True, kernels=True, device_decides=True)],
                         ids=["graphs", "compiled graphs", "speculative", "fused kernels", "decoder-first",
                              "decided on the device"])
def test_fast_paths_stop_at_the_global_context_like_eager_on_gpu(fast):
    m = short_global_context_model("cuda")
    prompts = ["a" * 55, "short"]
    kw = dict(max_new_bytes=30, stop_at_eos=False, **EVERY_BYTE_A_PATCH)
    eager = m.generate(prompts, **kw)
    assert eager[0].stop_reason == "context" and len(eager[0].bytes) == 9
    assert [(r.bytes, r.stop_reason) for r in m.generate(prompts, options=DecodeOptions(**fast), **kw)] == \
        [(r.bytes, r.stop_reason) for r in eager]


@pytest.mark.parametrize("step", ["speculative", "decoder_first"])
@pytest.mark.parametrize("patching", MODES, ids=lambda d: "-".join(map(str, d.values())))
def test_speculative_greedy_equals_host_steps(tiny_model, patching, step):
    """GreedyGraph's schedule (global step on every byte, kept only where a patch completed, bytes
    read back in chunks), or the DecoderFirstStep's (the decoder before the boundary decision,
    again after a global step), run eagerly on CPU: same bytes, entropies and patch starts, row
    by row."""
    params = SamplingParams(max_new_bytes=30, stop_at_eos=False)
    fast = generate(tiny_model, PROMPTS, params, PatchingParams(**patching), DecodeOptions(**{step: True}))
    slow = generate(tiny_model, PROMPTS, params, PatchingParams(**patching))
    for f, s in zip(fast, slow):
        assert f.bytes == s.bytes and f.patch_starts == s.patch_starts and f.global_steps == s.global_steps
        torch.testing.assert_close(torch.tensor(f.entropies), torch.tensor(s.entropies), atol=1e-5, rtol=0)
    ref, _ = generate_reference(tiny_model, PROMPTS[2], params, PatchingParams(**patching))
    assert fast[2].bytes == ref


def test_decided_steps_read_like_host_steps_without_a_device_decision(tiny_model):
    """`_read_decided` (greedy decoder-first steps decided on the device, queued back to back and
    read back a chunk behind) takes host-decided steps where the device cannot decide (here the
    CPU): the same records, step by step, as `_read_behind`."""
    from blt_core.generation import IncrementalBLT, schedules
    params = SamplingParams(max_new_bytes=21, stop_at_eos=False)
    ids = torch.tensor([tiny_model.tokenizer.encode(PROMPTS[0])])
    records = []
    for read in (schedules._read_behind, schedules._read_decided):
        inc = IncrementalBLT(tiny_model, 1, 64, PatchingParams(mode="static", patch_size=3))
        inc.prefill(ids, torch.tensor([ids.shape[1]]))
        byte = schedules.DecoderFirstStep(inc, device_decides=True)
        assert not byte.device_decides and byte.device_steps == 0
        records.append(list(read(byte, params, 21)))
    assert len(records[0]) == 21 and records[1] == records[0]
    assert sum(r[2][0] for r in records[0]) == 7                   # a patch every third byte


def test_the_decoders_guess_reads_nothing_the_encoders_end_writes(tiny_model):
    """On CUDA the decoder-first byte runs its decoder guess on the encoder layers' output while
    a third stream ends the encoder step (the pooling's keys, the pooled state, the kept h). Run
    here in the worst order (the guess first, the end after it), every byte leaves the same
    logits and every per-row tensor exactly as the ordinary order does, patches included."""
    ids = torch.tensor([tiny_model.tokenizer.encode(PROMPTS[1])])
    a, b = (IncrementalBLT(tiny_model, 1, 64, PatchingParams(mode="static", patch_size=3)) for _ in range(2))
    for inc in (a, b):
        inc.prefill(ids, torch.tensor([ids.shape[1]]))
    patches = 0
    for _ in range(12):
        nxt = a.logits.argmax(-1)
        H = a.entropy_step(nxt)
        a.encoder_step(nxt)
        a.decide_boundary(H, nxt)
        a.decoder_step(advance=False)
        H = b.entropy_step(nxt)
        h = b.encoder_layers(nxt)
        b.decoder_step(advance=False, h=h)
        b.encoder_finish(h)
        b.decide_boundary(H, nxt)
        assert torch.equal(a.logits, b.logits)
        for inc in (a, b):
            if bool(inc.next_start.any()):
                inc.commit_patch(inc.global_step())
                inc.decoder_step(advance=False)
            inc.advance()
        patches += int(a.next_start.any())
        for (x, name), (y, _) in zip(a._per_row(), b._per_row()):
            assert torch.equal(getattr(x, name), getattr(y, name)), name
    assert patches == 4                                                  # the patch part ran too


def test_decoder_first_step_samples_like_host_steps(tiny_model):
    """With sampling, the DecoderFirstStep gives the host-decided step's bytes for the same seed."""
    params = SamplingParams(max_new_bytes=30, stop_at_eos=False, temperature=0.9, top_k=20, seed=3,
                            repetition_penalty=1.2)
    patching = PatchingParams(mode="static", patch_size=3)
    fast = generate(tiny_model, PROMPTS, params, patching, DecodeOptions(decoder_first=True))
    slow = generate(tiny_model, PROMPTS, params, patching)
    assert [(r.bytes, r.patch_starts, r.global_steps) for r in fast] == \
        [(r.bytes, r.patch_starts, r.global_steps) for r in slow]


def test_speculative_and_decoder_first_switch_by_patch_share(tiny_model, monkeypatch):
    """With both options, a lone row's greedy steps run on the speculative graph while enough of
    its bytes end a patch and decoder-first otherwise, switching both ways within one generation
    (patches of 2 against a share of 0.5); several rows stay on the speculative graph. Both give
    the host-decided steps' bytes, patches and global steps."""
    from blt_core.generation import schedules
    kinds, run, read_behind = [], schedules.GreedyGraph.run, schedules._read_behind

    def spy(kind, steps):
        for record in steps:
            kinds.append(kind)
            yield record
    monkeypatch.setattr(schedules.GreedyGraph, "run", lambda self, *a, **k: spy("s", run(self, *a, **k)))
    monkeypatch.setattr(schedules, "_read_behind", lambda *a, **k: spy("d", read_behind(*a, **k)))
    monkeypatch.setattr(schedules, "SPECULATIVE_FROM", 0.5)
    params, patching = SamplingParams(max_new_bytes=60, stop_at_eos=False), PatchingParams(mode="static", patch_size=2)
    both = DecodeOptions(speculative=True, decoder_first=True)
    for rows, switches in ((1, True), (2, False)):
        kinds.clear()
        fast = generate(tiny_model, PROMPTS[:rows], params, patching, both)
        slow = generate(tiny_model, PROMPTS[:rows], params, patching)
        assert [(r.bytes, r.patch_starts, r.global_steps) for r in fast] == \
            [(r.bytes, r.patch_starts, r.global_steps) for r in slow]
        runs = "".join(kinds)
        assert len(runs) == 60 and ("sd" in runs and "ds" in runs) == switches and "s" in runs, runs


def test_speculative_and_decoder_first_sample_decoder_first(tiny_model):
    """Sampled bytes with both options take the decoder-first step (the speculative graph is
    greedy only): the host-decided step's bytes for the same seed."""
    params = SamplingParams(max_new_bytes=30, stop_at_eos=False, temperature=0.9, top_k=20, seed=5)
    patching = PatchingParams(mode="static", patch_size=3)
    fast = generate(tiny_model, PROMPTS, params, patching, DecodeOptions(speculative=True, decoder_first=True))
    slow = generate(tiny_model, PROMPTS, params, patching)
    assert [(r.bytes, r.global_steps) for r in fast] == [(r.bytes, r.global_steps) for r in slow]


def test_decoder_first_flag_carries_its_bodys_number(tiny_model):
    """The value the host reads on CUDA (DecoderFirstStep.flag, copied to pinned memory) is the
    body's number * 2 + whether a patch completed: the number counts every body run, queued or
    not, as the host does (`bodies`), and the bit is the decision's."""
    from blt_core.generation.schedules import DecoderFirstStep
    ids = torch.tensor([tiny_model.tokenizer.encode(PROMPTS[0])])
    inc = IncrementalBLT(tiny_model, 1, ids.shape[1] + 20, PatchingParams(mode="static", patch_size=3))
    inc.prefill(ids, torch.tensor([ids.shape[1]]))
    byte, params, ends = DecoderFirstStep(inc), SamplingParams(max_new_bytes=20, stop_at_eos=False), []
    for i in range(9):
        if i % 2:
            byte.queue_greedy(params)                      # the next body before the step that takes it
        byte.step_greedy(params)
        assert int(byte.flag) >> 1 == byte.bodies == i + 1
        ends.append(int(byte.flag) & 1)
        assert ends[-1] == int(inc.next_start.any())
    assert 2 <= sum(ends) <= 4                             # static patches of 3: some bytes end one


def test_speculative_greedy_stops_at_stop_strings(tiny_model):
    params = SamplingParams(max_new_bytes=40, stop_at_eos=False)
    free = generate(tiny_model, [PROMPTS[0]], params, options=DecodeOptions(speculative=True))[0].bytes
    at = next(i for i in range(10, 38) if free[i:i + 2].isascii())     # a stop string inside the 2nd chunk
    stop = free[at:at + 2].decode()
    params = SamplingParams(max_new_bytes=40, stop_at_eos=False, stop=[stop])
    res = generate(tiny_model, [PROMPTS[0]], params, options=DecodeOptions(speculative=True))[0]
    assert res.stop_reason == "stop" and res.bytes == free[:free.index(stop.encode())]


def test_fastest_options_per_device_and_sampling():
    assert DecodeOptions.fastest("cpu") == DecodeOptions()                  # the eager path
    greedy = DecodeOptions.fastest("cuda")
    assert greedy.cuda_graphs and greedy.compile and greedy.speculative and greedy.decoder_first
    for sampling in (SamplingParams(temperature=0.8), SamplingParams(repetition_penalty=1.1)):
        options = DecodeOptions.fastest("cuda", sampling)
        assert options.cuda_graphs and options.compile and not options.speculative and options.decoder_first


def test_decode_keywords_build_the_options(tiny_model):
    """BLT.generate's cuda_graphs / compile / speculative / kernels keywords are DecodeOptions'
    fields; the object or the keywords, not both."""
    kw = dict(max_new_bytes=12, stop_at_eos=False)
    assert tiny_model.generate("Hi", speculative=True, **kw).bytes == \
        tiny_model.generate("Hi", options=DecodeOptions(speculative=True), **kw).bytes
    with pytest.raises(TypeError, match="not both"):
        tiny_model.generate("Hi", options=DecodeOptions(), compile=True, **kw)


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
