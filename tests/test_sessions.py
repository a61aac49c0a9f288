"""Decode sessions kept between generate calls (blt_core/generation/sessions.py): a later call
with the same shapes reuses the stepper and its schedule, and its results are a fresh stepper's."""
import pytest

from blt_core.generation import DecodeOptions, generate, sessions, stream
from blt_core.patching import PatchingParams
from blt_core.sampling import SamplingParams

PARAMS = SamplingParams(max_new_bytes=24, stop_at_eos=False)


@pytest.fixture()
def model(own_tiny_model):
    return own_tiny_model                   # the tests change its threshold and its weights


def fresh(model, prompt, params=PARAMS, patching=PatchingParams(), options=DecodeOptions()):
    sessions.release(model)
    out = generate(model, [prompt], params, patching, options)[0]
    sessions.release(model)
    return out


@pytest.mark.parametrize("options", [DecodeOptions(), DecodeOptions(speculative=True),
                                     DecodeOptions(decoder_first=True)], ids=["host", "speculative", "decoder-first"])
def test_a_later_call_of_the_same_shapes_reuses_the_session(model, options):
    first = generate(model, ["Hello there, "], PARAMS, options=options)[0]
    kept = sessions.kept(model)
    assert kept is not None
    second = generate(model, ["Other prompt?"], PARAMS, options=options)[0]      # same length, same cache
    assert sessions.kept(model) is kept
    assert first.bytes == fresh(model, "Hello there, ", options=options).bytes
    assert (second.bytes, second.patch_starts) == (lambda r: (r.bytes, r.patch_starts))(
        fresh(model, "Other prompt?", options=options))


def test_other_shapes_or_patching_take_a_new_session(model):
    generate(model, ["Hello there, "], PARAMS)
    kept = sessions.kept(model)
    generate(model, ["Hello there, ", "and you"], PARAMS)                          # two rows
    assert sessions.kept(model) is not kept
    kept = sessions.kept(model)
    static = PatchingParams(mode="static", patch_size=3)
    out = generate(model, ["Hello there, ", "and you"], PARAMS, static)
    assert sessions.kept(model) is not kept
    assert out[0].patch_starts == fresh(model, "Hello there, ", patching=static).patch_starts


def test_the_config_default_threshold_is_read_per_call(model):
    """PatchingParams() means the config's threshold at the time of the call, kept session or not."""
    before = generate(model, ["Hello there, "], PARAMS)[0]
    model.config.patching_threshold *= 0.5
    after = generate(model, ["Hello there, "], PARAMS)[0]
    assert after.patch_starts == fresh(model, "Hello there, ").patch_starts
    assert after.patch_starts != before.patch_starts


@pytest.mark.parametrize("options", [DecodeOptions(speculative=True), DecodeOptions(decoder_first=True)],
                         ids=["speculative", "decoder-first"])
def test_a_stream_stopped_early_leaves_a_sound_session(model, options):
    """Stopped early, a decoder-first run leaves a byte queued past the last one read
    (queue_greedy): the next call on the kept session starts clean all the same."""
    events = stream(model, "Hello there, ", PARAMS, options=options)
    for _, _ in zip(range(5), events):
        pass
    events.close()
    kept = sessions.kept(model)
    assert kept is not None
    out = generate(model, ["Hello there, "], PARAMS, options=options)[0]
    assert sessions.kept(model) is kept
    assert out.bytes == fresh(model, "Hello there, ", options=options).bytes


def test_weights_moved_or_cast_make_a_new_session(model):
    generate(model, ["Hello there, "], PARAMS)
    key = sessions.key(model, 1, 64, PatchingParams(), DecodeOptions(), PARAMS)
    model.double()
    assert sessions.key(model, 1, 64, PatchingParams(), DecodeOptions(), PARAMS) != key
    out = generate(model, ["Hello there, "], PARAMS)[0]
    assert len(out.bytes) == PARAMS.max_new_bytes
