"""Continuous batching (blt_core/generation/batching.py) on the shipped model, on CPU: every row
of a shared batch gets exactly what it gets alone (greedy and seeded sampling, every patching
mode, different prompt lengths, rows joining and leaving mid-generation), a closed stream frees
its row at once, and a request the model cannot take fails alone."""
from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
import torch

from blt_core import BLT
from blt_core.generation import DecodeOptions, GenerationResult
from blt_core.generation.batching import GATHER_SHARE, BatchEngine
from blt_core.generation.driver import right_padded
from blt_core.generation.stepper import PREFILL_ROUND, IncrementalBLT
from blt_core.patching import PatchingParams
from blt_core.sampling import SamplingParams

from webapp_helpers import SHIPPED_MODEL

PROMPTS = ["The ", "def parse(text):\n    ", "Bytes, not tokens: a longer prompt than the others, " * 3]
MODES = [PatchingParams(), PatchingParams(mode="entropy_monotonic", threshold=0.4),
         PatchingParams(mode="static", patch_size=3), PatchingParams(mode="space"),
         PatchingParams(mode="byte"), PatchingParams(threshold=1.0, max_patch_length=2)]
SAMPLINGS = [SamplingParams(max_new_bytes=24, stop_at_eos=False),
             SamplingParams(max_new_bytes=20, temperature=0.9, top_k=40, seed=7),
             SamplingParams(max_new_bytes=16, temperature=1.3, top_p=0.8, seed=3, repetition_penalty=1.3),
             SamplingParams(max_new_bytes=30, temperature=0.7, seed=11, stop=("e",))]


@pytest.fixture(scope="module")
def model():
    return BLT.from_pretrained(SHIPPED_MODEL)


@pytest.fixture(params=[DecodeOptions(), DecodeOptions(speculative=True), DecodeOptions(decoder_first=True)],
                ids=["host-decided", "speculative", "decoder-first"])
def options(request):
    """The three steps the engine has: the host decides when the global model runs; or it runs
    on every byte and is kept where a patch completed (SpeculativeStep); or the host decides and
    the decoder runs before the decision, again after a global step (DecoderFirstStep). Eager
    on the CPU."""
    return request.param


@pytest.fixture
def engine(model, options):
    engine = BatchEngine(model, slots=4, options=options)
    yield engine
    engine.stop()


def drain(stream) -> tuple[list, GenerationResult]:
    events = list(stream)
    return events[:-1], events[-1]


def same_as_alone(model, prompt, params, patching, events, result):
    alone = model.generate(prompt, patching=patching, **vars(params))
    assert result.bytes == alone.bytes and result.stop_reason == alone.stop_reason
    assert result.patch_starts == alone.patch_starts and result.global_steps == alone.global_steps
    assert result.entropies == pytest.approx(alone.entropies, abs=1e-4)
    assert b"".join(bytes([e.byte]) for e in events)[:len(result.bytes)] == result.bytes


@pytest.mark.parametrize("params", SAMPLINGS, ids=["greedy", "top_k", "top_p+penalty", "stop"])
def test_rows_of_a_batch_equal_each_alone(model, engine, params):
    streams = [engine.submit(p, params) for p in PROMPTS]
    for prompt, stream in zip(PROMPTS, streams):
        same_as_alone(model, prompt, params, PatchingParams(), *drain(stream))


def test_greedy_rows_share_one_argmax_per_eos_rule(model, options):
    """Greedy rows are sampled together, one argmax for the rows that may end at EOS and one for
    those that may not, wherever they sit among sampled rows; each still gets its bytes alone."""
    no_eos = SamplingParams(max_new_bytes=24, stop_at_eos=False)
    jobs = [(PROMPTS[0], no_eos), (PROMPTS[1], SAMPLINGS[1]), (PROMPTS[2], SamplingParams(max_new_bytes=24)),
            (PROMPTS[1], no_eos), (PROMPTS[0], SamplingParams(max_new_bytes=18))]
    engine = BatchEngine(model, slots=len(jobs), options=options)
    try:
        streams = [engine.submit(prompt, params) for prompt, params in jobs]
        for (prompt, params), stream in zip(jobs, streams):
            same_as_alone(model, prompt, params, PatchingParams(), *drain(stream))
    finally:
        engine.stop()


def test_every_patching_mode_in_one_batch(model, options):
    engine = BatchEngine(model, slots=len(MODES), options=options)
    try:
        params = SamplingParams(max_new_bytes=20, temperature=0.8, seed=5)
        streams = [engine.submit(PROMPTS[i % 3], params, patching) for i, patching in enumerate(MODES)]
        for i, (patching, stream) in enumerate(zip(MODES, streams)):
            same_as_alone(model, PROMPTS[i % 3], params, patching, *drain(stream))
    finally:
        engine.stop()


def test_rows_join_and_leave_mid_generation(model, engine):
    long = SamplingParams(max_new_bytes=60, temperature=0.9, seed=1)
    short = SamplingParams(max_new_bytes=8, stop_at_eos=False)
    first = engine.submit(PROMPTS[0], long)
    head = [next(first) for _ in range(10)]               # it runs alone for ten bytes
    second = engine.submit(PROMPTS[1], short)              # joins, and leaves long before the first
    third_events = None
    second_events, second_result = drain(second)
    third = engine.submit(PROMPTS[2], short)               # takes a row while the first still runs
    third_events, third_result = drain(third)
    rest, first_result = drain(first)
    same_as_alone(model, PROMPTS[0], long, PatchingParams(), head + rest, first_result)
    same_as_alone(model, PROMPTS[1], short, PatchingParams(), second_events, second_result)
    same_as_alone(model, PROMPTS[2], short, PatchingParams(), third_events, third_result)


def test_more_requests_than_slots_wait_their_turn(model, options):
    engine = BatchEngine(model, slots=2, options=options)
    try:
        params = SamplingParams(max_new_bytes=12, stop_at_eos=False)
        streams = [engine.submit(p, params) for p in PROMPTS * 2]
        for prompt, stream in zip(PROMPTS * 2, streams):
            same_as_alone(model, prompt, params, PatchingParams(), *drain(stream))
    finally:
        engine.stop()


@pytest.mark.parametrize("decoder_first", [False, True], ids=["host-decided", "decoder-first"])
def test_a_lone_row_moves_between_the_speculative_and_other_steps(model, decoder_first):
    """A lone row takes the speculative step while most of its bytes end a patch and the
    host-decided (or the decoder-first) one once its patches grow (here 1-byte,
    then 6-byte static patches); its bytes stay what it gets alone, and bytes read back one step
    late are dropped past EOS or a stop."""
    engine = BatchEngine(model, slots=2, options=DecodeOptions(speculative=True, decoder_first=decoder_first))
    try:
        for patching, params in ((PatchingParams(mode="byte"), SamplingParams(max_new_bytes=30, stop_at_eos=False)),
                                 (PatchingParams(mode="static", patch_size=6), SAMPLINGS[3]),
                                 (PatchingParams(mode="static", patch_size=6), SamplingParams(max_new_bytes=40))):
            same_as_alone(model, PROMPTS[1], params, patching, *drain(engine.submit(PROMPTS[1], params, patching)))
        counts = engine.counts
        other = counts["steps"] - counts["speculative_steps"]
        assert min(other, counts["speculative_steps"]) > 10                              # both kinds
        assert counts["decoder_first_steps"] == (other if decoder_first else 0)
        # the greedy row's decoder-first bytes were queued by the step before them
        assert (counts["queued_ahead"] > 10) if decoder_first else (counts["queued_ahead"] == 0)
    finally:
        engine.stop()


def test_rows_join_and_close_while_a_byte_is_queued_ahead(model):
    """A lone greedy row on decoder-first steps has its next byte queued as each step ends
    (`_queue_next`); requests that come meanwhile join after that byte, a stream closed
    meanwhile leaves after it, and every row still gets what it gets alone."""
    engine = BatchEngine(model, slots=3, options=DecodeOptions(decoder_first=True))
    static = PatchingParams(mode="static", patch_size=6)
    greedy = SamplingParams(max_new_bytes=40, stop_at_eos=False)
    try:
        first = engine.submit(PROMPTS[1], greedy, static)
        head = [next(first) for _ in range(10)]
        assert engine.counts["queued_ahead"] > 0
        closing = engine.submit(PROMPTS[0], SamplingParams(max_new_bytes=500, stop_at_eos=False))
        others = [(PROMPTS[2], SAMPLINGS[1], MODES[1]), (PROMPTS[0], SamplingParams(max_new_bytes=30), static)]
        next(closing)
        closing.close()
        streams = [engine.submit(*job) for job in others]
        events, result = drain(first)
        same_as_alone(model, PROMPTS[1], greedy, static, head + events, result)
        for (prompt, params, patching), stream in zip(others, streams):
            same_as_alone(model, prompt, params, patching, *drain(stream))
        deadline = time.monotonic() + 5
        while engine.running() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.running() == 0
    finally:
        engine.stop()


def test_closing_a_stream_frees_its_row_at_once(engine):
    stream = engine.submit("Once", SamplingParams(max_new_bytes=1000, stop_at_eos=False))
    next(stream)
    assert engine.running() == 1
    t0 = time.monotonic()
    stream.close()
    while engine.running():
        assert time.monotonic() - t0 < 1.0, "the row is still decoding 1 s after its stream closed"
        time.sleep(0.01)


def test_a_request_the_model_cannot_take_fails_alone(model, engine):
    with pytest.raises(ValueError, match="context of 4096 bytes"):
        engine.submit("x" * 4000, SamplingParams(max_new_bytes=200))
    ok = engine.submit("The ", SamplingParams(max_new_bytes=40, stop_at_eos=False))
    # 3000 bytes in 1-byte static patches overflow the global model's 2048 patches
    bad = engine.submit("y" * 3000, SamplingParams(max_new_bytes=10), PatchingParams(mode="static", patch_size=1))
    with pytest.raises(ValueError, match="global model's context"):
        next(bad)
    assert drain(ok)[1].stop_reason == "max_new_bytes"


def test_the_speculative_step_takes_the_argmax_inside_as_outside(model):
    """SpeculativeStep.step_greedy (the argmax inside the step) decodes what sampling greedily
    outside and stepping does, record for record; it refuses sampling that is not greedy."""
    from blt_core.generation.schedules import SpeculativeStep
    from blt_core.generation.stepper import IncrementalBLT
    from blt_core.sampling import sample_next
    from blt_core.tokenizer import ByteTokenizer
    rows = [ByteTokenizer().encode(p) for p in PROMPTS[:2]]
    ids = torch.tensor([r + [0] * (max(map(len, rows)) - len(r)) for r in rows])
    steppers = [IncrementalBLT(model, 2, 64) for _ in range(2)]
    for inc in steppers:
        inc.prefill(ids, torch.tensor([len(r) for r in rows]))
    inside, outside = (SpeculativeStep(inc) for inc in steppers)
    params = SamplingParams(stop_at_eos=False)
    for _ in range(8):
        expected = outside.step(sample_next(steppers[1].logits, None, params, None)).clone()
        assert torch.equal(inside.step_greedy(params), expected)
    with pytest.raises(ValueError, match="greedily"):
        inside.step_greedy(SamplingParams(temperature=0.7))


def test_requests_that_come_together_are_prefilled_together(model):
    """Queued requests of one patching rule share a prefill pass; a prompt in such a group that
    the model cannot take fails alone (the group is prefilled again one by one)."""
    gate = threading.Event()
    engine = BatchEngine(model, slots=4, call=lambda fn: (gate.wait(), fn()))    # holds the first tick
    try:
        params = SamplingParams(max_new_bytes=12, stop_at_eos=False)
        jobs = [(p, params, PatchingParams()) for p in PROMPTS] + [(PROMPTS[0], params, PatchingParams(mode="byte"))]
        streams = [engine.submit(*job) for job in jobs]
        gate.set()
        for (prompt, params_, patching), stream in zip(jobs, streams):
            same_as_alone(model, prompt, params_, patching, *drain(stream))
        assert engine.counts["prefills"] == 2                              # one per patching rule
        gate.clear()
        static = PatchingParams(mode="static", patch_size=1)
        bad = engine.submit("y" * 3000, SamplingParams(max_new_bytes=10), static)   # > 2048 patches
        ok = engine.submit("The ", params, static)
        gate.set()
        with pytest.raises(ValueError, match="global model's context"):
            next(bad)
        same_as_alone(model, "The ", params, static, *drain(ok))
        assert engine.counts["prefills"] == 2 + 3                          # together, then each alone
    finally:
        gate.set()
        engine.stop()


def test_requests_arriving_one_by_one_share_a_prefill_from_idle(model):
    """An idle engine waits while requests keep coming (each within the gap of the last), so
    requests sent together by separate clients share one prefill; one arriving after the gap
    gets its own. Gaps widened here so a loaded CI machine cannot split the first group."""
    engine = BatchEngine(model, slots=4, gather=(0.5, 5.0))
    try:
        params = SamplingParams(max_new_bytes=6, stop_at_eos=False)
        streams = []
        for prompt in PROMPTS:                                  # one by one, 50 ms apart
            streams.append(engine.submit(prompt, params))
            time.sleep(0.05)
        for prompt, stream in zip(PROMPTS, streams):
            same_as_alone(model, prompt, params, PatchingParams(), *drain(stream))
        assert engine.counts["prefills"] == 1
        engine.gather = (0.0, 0.0)                              # no waiting: each its own prefill
        late = [engine.submit(PROMPTS[0], params)]
        drain(late[0])
        assert engine.counts["prefills"] == 2
    finally:
        engine.stop()


def test_a_lone_request_waits_for_companions_a_share_of_a_prefill_at_most(model):
    """Waiting for more requests costs a lone one the whole gap, so after a prefill has been
    timed the gap is at most GATHER_SHARE of it: far under a gap of half a second here."""
    engine = BatchEngine(model, slots=4, gather=(0.5, 5.0))
    try:
        params = SamplingParams(max_new_bytes=4, stop_at_eos=False)
        same_as_alone(model, PROMPTS[0], params, PatchingParams(), *drain(engine.submit(PROMPTS[0], params)))
        first_wait, prefill_s = engine.counts["gather_s"], engine.last_prefill_s
        assert first_wait >= 0.45                        # no prefill timed yet: the whole gap
        assert prefill_s is not None and prefill_s < 0.5  # ~0.03 s: half of it is far under the gap
        same_as_alone(model, PROMPTS[1], params, PatchingParams(), *drain(engine.submit(PROMPTS[1], params)))
        waited = engine.counts["gather_s"] - first_wait
        assert waited <= GATHER_SHARE * prefill_s + 0.1  # at most 0.35 s, where the whole gap is 0.5
        assert engine.counts["prefills"] == 2
    finally:
        engine.stop()


def test_an_idle_engine_keeps_its_caches_a_while_then_gives_them_back(model):
    """Without CUDA graphs the batch's caches outlive an idle spell of up to idle_keep_s, so a
    request soon after the last one does not allocate them again; after that they go."""
    engine = BatchEngine(model, slots=2, idle_keep_s=2.0)
    try:
        params = SamplingParams(max_new_bytes=4, stop_at_eos=False)
        drain(engine.submit(PROMPTS[0], params))
        kept = engine.inc
        assert kept is not None
        same_as_alone(model, PROMPTS[1], params, PatchingParams(), *drain(engine.submit(PROMPTS[1], params)))
        assert engine.inc is kept                        # the same tensors, not allocated again
        deadline = time.perf_counter() + 10.0
        while engine.inc is not None and time.perf_counter() < deadline:
            time.sleep(0.05)
        assert engine.inc is None
        same_as_alone(model, PROMPTS[2], params, PatchingParams(), *drain(engine.submit(PROMPTS[2], params)))
    finally:
        engine.stop()


def test_a_kept_row_copy_reads_its_source_as_it_is_at_each_copy(model):
    """load_row(keep=True) keeps the views of both steppers for the next copy of the same rows
    (the engine's kept prefill steppers): a second prefill into the source, then the kept copy,
    gives what a fresh copy gives, tensor by tensor."""
    src, dst, fresh = IncrementalBLT(model, 1, 128), IncrementalBLT(model, 3, 256), IncrementalBLT(model, 3, 256)

    def prefill(prompt):
        ids, lengths = right_padded([model.tokenizer.encode(prompt)], model.device, PREFILL_ROUND, 127)
        src.prefill(ids, lengths)

    for prompt in PROMPTS[:2]:
        prefill(prompt)
        dst.load_row(2, src, keep=True)
        fresh.load_row(2, src)
        for (obj, name), (got, _), (src_obj, _) in zip(dst._per_row(), fresh._per_row(), src._per_row()):
            value = getattr(src_obj, name)[0:1]
            at = (slice(2, 3),) + tuple(slice(0, n) for n in value.shape[1:])
            assert torch.equal(getattr(obj, name)[at], value) and torch.equal(getattr(got, name)[at], value), name
    assert len(dst._kept_copies) == 1 and not fresh._kept_copies


def check_against_alone(model, jobs, streams):
    for (prompt, params, patching), stream in zip(jobs, streams):
        _, result = drain(stream)
        alone = model.generate(prompt, patching=patching, **vars(params))
        assert result.bytes == alone.bytes and result.patch_starts == alone.patch_starts, prompt


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("device_decides", [True, False], ids=["decided on the device", "host-decided"])
def test_the_cuda_fast_path_batched_equals_eager_alone(device_decides):
    """The app's CUDA path (graphs of compiled parts, fused kernels, the speculative step while
    most steps complete a patch, the decoder-first one otherwise, its greedy bytes decided on the
    GPU or by the host),
    float32: a greedy row alone for a while, then 4 rows of mixed sampling and patching in one
    batch, joining at different times; then four rows starting together; each against its
    run alone on the eager path; then three rows that patch alike, prefilled together. Its
    prefills replay CUDA graphs into kept steppers. (In bfloat16 the batch shape's products round differently from
    one row's, which can flip a near tie: bench/batched_vs_solo.py.)"""
    from app.models import decode_options
    from blt_core.generation import device_branch
    if device_decides and device_branch.unavailable() is not None:
        pytest.skip(f"device-decided steps unavailable: {device_branch.unavailable()}")
    model = BLT.from_pretrained(SHIPPED_MODEL, device="cuda", dtype=torch.float32)
    options = decode_options("fastest", "cuda")
    assert options.device_decides or not device_decides          # fastest takes it where it can
    engine = BatchEngine(model, slots=4, options=replace(options, device_decides=device_decides))
    try:
        jobs = [(PROMPTS[i % 3], SAMPLINGS[i % 4], MODES[i]) for i in range(6)]
        streams = [engine.submit(*jobs[0])]                # greedy, alone for twelve bytes
        for _ in range(12):
            next(streams[0])
        streams += [engine.submit(*job) for job in jobs[1:3]]
        next(streams[1])
        streams += [engine.submit(*job) for job in jobs[3:]]
        check_against_alone(model, jobs, streams)
        check_against_alone(model, jobs[:4], [engine.submit(*job) for job in jobs[:4]])   # start together
        alike = [(PROMPTS[i], SAMPLINGS[i], MODES[0]) for i in range(3)]   # one prefill, padded to 4 rows
        check_against_alone(model, alike, [engine.submit(*job) for job in alike])
        before = engine.counts["decoder_first_steps"]           # a lone row in long patches
        job = (PROMPTS[1], SamplingParams(max_new_bytes=64, stop_at_eos=False), PatchingParams(mode="static", patch_size=6))
        check_against_alone(model, [job], [engine.submit(*job)])
        assert engine.counts["decoder_first_steps"] - before > 30
        if device_decides:                                         # its greedy bytes decided on the GPU
            assert engine.counts["decided_on_device"] > 30 and engine.counts["queued_ahead"] == 0
        else:                                                      # or queued ahead
            assert engine.counts["queued_ahead"] > 30 and engine.counts["decided_on_device"] == 0
        graphs = engine.prefill_graphs                             # every prefill above came from graphs
        assert {name[0] for name in graphs.graphs} == {"entropies", "rest"} and not graphs.failed
        assert set(graphs.steppers) == {1, 4}
        assert engine.counts["graph_prefills"] == engine.counts["prefills"] > 0
    finally:
        engine.stop()
