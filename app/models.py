"""The model the app serves, loaded on first use in the worker process (never in gunicorn's
master, so CUDA is only touched where the model lives), with bounded concurrency.

States: not_loaded -> loading -> (warming ->) ready, or -> failed (degraded: the load error is
kept, model endpoints answer 503 with it, /healthz and /api/models report it). Generation runs
in a continuous-batching engine (blt_core.generation.batching) on the fastest exact path for
the device; on CUDA its warm-up (compile, graph capture) runs as part of loading, in the
background ("warming": analyses are served, generations answer 503 until it is done), so no
request pays for it. `describe()` only reads fields, so /healthz never waits on a load or a
generation.

On CPU every model call runs on one thread (app/torch_thread.py says why): the load, the
views' analyses (`run`) and the engine's generation steps, which go before queued analyses.
Once loaded (and warm) the heap is frozen for the garbage collector (app/gc_pauses.py).
"""
from __future__ import annotations

import logging
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch

from blt_core.default_model import LoadedModel, load_model
from blt_core.generation import DecodeOptions
from blt_core.generation.batching import BatchEngine
from blt_core.generation.stepper import PREFILL_ROUND
from blt_core.patching import PatchingParams
from blt_core.sampling import SamplingParams

from . import gc_pauses
from .errors import ApiError
from .memory import AnalysisBudget
from .settings import REPO_ROOT
from .torch_thread import TorchThread

log = logging.getLogger(__name__)


class Slots:
    """At most `size` holders at once; a request that cannot get a slot within `wait_s` is
    refused with 429 instead of queueing without bound. Size 0: not sized yet (the analysis
    slots, sized from the model as it loads: `resize`)."""

    def __init__(self, size: int, wait_s: float, what: str):
        self.wait_s, self.what = wait_s, what
        self._lock = threading.Lock()
        self.in_use = 0
        self.resize(size)

    def resize(self, size: int) -> None:
        """Only while no slot is held (before the model is ready)."""
        self.size, self._sem = size, threading.BoundedSemaphore(size)

    def acquire(self) -> None:
        acquired = self._sem.acquire(timeout=self.wait_s) if self.wait_s > 0 else self._sem.acquire(blocking=False)
        if not acquired:
            raise ApiError(429, "overloaded", f"Model is overloaded: all {self.size} {self.what} slots are busy; "
                                              "retry shortly")
        with self._lock:
            self.in_use += 1

    def release(self) -> None:
        with self._lock:
            self.in_use -= 1
        self._sem.release()

    @contextmanager
    def held(self):
        self.acquire()
        try:
            yield
        finally:
            self.release()


def pick_device(requested: str | None) -> str:
    return requested or ("cuda" if torch.cuda.is_available() else "cpu")


DEFAULT_GENERATION_SLOTS = {"cuda": 8, "cpu": 4}   # batch-1 decoding leaves a GPU >95 % idle
WARM_UP_PROMPT = "The warm-up compiles and captures the generation step before the first request. "
WARM_UP_PREFILLS_TO = 512     # the warm-up prefills prompts of every rounded length up to this many bytes


def decode_options(decode: str, device: str) -> DecodeOptions:
    """The engine's options: the fastest exact path for the device, or the eager reference."""
    if decode not in ("fastest", "eager"):
        raise ValueError(f"BLT_DECODE must be 'fastest' or 'eager', found {decode!r}")
    if decode == "eager":
        return DecodeOptions()
    # Inductor's coordinate-descent tuning would double the warm-up (blt-1b on an H100: 29 + 110 s
    # against 19 + 45 s for the engine's two step shapes) for steps within 2 %
    # (bench/results/profile_batch_h100_blt1b_*tuning.json). speculative: while most steps complete
    # a patch the engine takes the global step on every byte; decoder_first: otherwise the decoder
    # runs beside the entropy model, and the global step only where a patch completed.
    fastest = DecodeOptions.fastest(device)
    return replace(fastest, compile_tuning=False) if fastest.compile else fastest


def describe_options(options: DecodeOptions) -> str:
    parts = [name for name, on in (("cuda graphs", options.cuda_graphs), ("torch.compile", options.compile),
                                   ("fused kernels", options.kernels), ("speculative global step", options.speculative),
                                   ("decoder-first step", options.decoder_first),
                                   ("decided on the device", options.decoder_first and options.device_decides))
             if on]
    return " + ".join(parts) or "eager"


class ModelHolder:
    """analysis_budget sizes analysis slots left at 0 when the model loads (app/memory.py)."""

    def __init__(self, name: str | None, device: str | None, generation: Slots, analysis: Slots,
                 analysis_budget: AnalysisBudget | None = None, decode: str = "fastest", entropy_memo_mb: int = 0):
        self.name, self.requested_device, self.decode = name, device, decode
        self.entropy_memo_mb = entropy_memo_mb
        self.generation, self.analysis, self.analysis_budget = generation, analysis, analysis_budget
        self.state, self.error = "not_loaded", None
        self.loaded: LoadedModel | None = None
        self.engine: BatchEngine | None = None
        self.warmup_s: float | None = None
        self._load_lock = threading.Lock()
        self.torch_thread: TorchThread | None = None     # on CPU, from the load on

    def run(self, fn, *args, **kwargs):
        """fn(*args, **kwargs): on CPU on the torch thread, after the calls queued before it
        (the analysis slots bound how many), elsewhere right here. Raises what fn raises."""
        if self.torch_thread is None:
            return fn(*args, **kwargs)
        return self.torch_thread.run(fn, *args, **kwargs)

    def get(self) -> LoadedModel:
        """The loaded model; loads it on first call. Raises 503 when it cannot be loaded."""
        if self.loaded is None and self.state != "failed":
            with self._load_lock:
                if self.loaded is None and self.state != "failed":
                    self._load()
        if self.loaded is None:
            raise ApiError(503, "model_unavailable", f"the model is unavailable: {self.error}")
        return self.loaded

    def load_in_background(self) -> None:
        """Start loading now in a daemon thread (a server's worker calls this at start), so
        /healthz says ready or degraded without waiting for a first model request."""
        def load():
            try:
                self.get()
            except ApiError:
                pass                    # recorded in state and error: /healthz reports it
        threading.Thread(target=load, name="model-load", daemon=True).start()

    def _load(self) -> None:
        self.state = "loading"
        gc_pauses.PAUSES.watch()
        device = pick_device(self.requested_device)
        if torch.device(device).type == "cpu":
            self.torch_thread = TorchThread()
        try:
            loaded = self.run(load_model, self.name, device=device)
            if torch.device(device).type == "cuda":
                # cuDNN's attention plans anew for every sequence length it meets: 0.3-1.6 s on
                # each new prompt or text length, where flash attention needs no plan
                # (bench/results/first_byte_h200_blt1b.json).
                torch.backends.cuda.enable_cudnn_sdp(False)
        except Exception as err:  # any load failure (missing dir, corrupt file, OOM) degrades the app
            log.exception("could not load model %s", self.name or "(default)")
            self.error = public_message(f"{self.name or 'default model'} could not be loaded on {device}: "
                                        f"{type(err).__name__}: {err}", self.name)   # the log has it in full
            self.state = "failed"
            return
        if self.entropy_memo_mb and loaded.model.entropy_model is not None:
            # a text edited or typed into recomputes entropies only from its first change
            loaded.model.remember_entropies(self.entropy_memo_mb << 20)
        if self.analysis.size == 0:      # before `loaded` is set: no request can hold a slot yet
            self.analysis.resize(self.analysis_budget.slots_for(loaded.model.config))
        if self.generation.size == 0:
            self.generation.resize(DEFAULT_GENERATION_SLOTS.get(torch.device(device).type, 4))
        options = decode_options(self.decode, device)
        self.engine = BatchEngine(loaded.model, self.generation.size, options,
                                  call=None if self.torch_thread is None else self.torch_thread.run_first)
        warm = options.compile or (options.cuda_graphs and torch.device(device).type == "cuda")
        if not warm:
            self._freeze_heap()
        self.loaded, self.state = loaded, "warming" if warm else "ready"
        log.info("loaded %s on %s; generation: %s, %d slots", loaded.name, device, describe_options(options),
                 self.generation.size)
        if warm:
            self._warm_up()

    def _warm_up(self) -> None:
        """Compile and capture the engine's steps before the first request: short generations in
        which every byte completes a patch, one alone and one in every slot at once (the engine's
        two batch shapes, on their speculative step; and a full batch's prefill: served without
        it, the first 8 streams on an H100 waited 0.17 s for their first byte, later ones
        0.08-0.11 s), greedy with EOS off and on (the argmax is captured per EOS rule); one alone
        in 8-byte patches, with EOS off and on (a lone row with long patches takes the
        decoder-first step: its three graphs, and where the GPU decides the step, its graph per
        EOS rule); then one with the default patching and sampling, as a first request comes.
        The first prefill alone and the first in all slots capture the engine's prefill graphs
        (blt_core/generation/prefill_graphs.py), so none is captured once generations are served.
        The analyses served meanwhile run no device-wide synchronize, the call that broke a
        capture in another thread in the CUDA batching test.
        Last, on CUDA, one-byte generations whose prompts take every length the engine rounds
        prefills to (stepper.PREFILL_ROUND) up to WARM_UP_PREFILLS_TO bytes, alone and in every
        slot, with one-byte and 8-byte patches (the global model's patch counts): a first prompt
        of such a length then pays no selection of its matrix products (~40 ms of blt-1b's
        prefill on an H100, bench/prefill_shapes.py)."""
        t0 = time.perf_counter()
        short, long = SamplingParams(max_new_bytes=8, stop_at_eos=False), SamplingParams(max_new_bytes=40, stop_at_eos=False)
        default, one = SamplingParams(max_new_bytes=8), SamplingParams(max_new_bytes=1, stop_at_eos=False)
        byte, static8 = PatchingParams(mode="byte"), PatchingParams(mode="static", patch_size=8)
        full = self.engine.slots
        runs = [(WARM_UP_PROMPT, n, patching, params) for n, patching, params in (
            (1, byte, short), (1, byte, default), (full, byte, short), (full, byte, default), (1, static8, long),
            (1, static8, replace(long, stop_at_eos=True)), (1, PatchingParams(), default))]
        model = self.engine.model                       # BOS + length - 1 bytes, and one new byte
        longest = min(WARM_UP_PREFILLS_TO, model.config.byte_context - 1, model.config.patch_context - 1)
        if model.device.type == "cuda":                 # (cuBLAS's cost; CPU products have none)
            runs += [("x" * (length - 1), n, patching, one)
                     for length in range(PREFILL_ROUND, longest + 1, PREFILL_ROUND)
                     for patching in (byte, static8) for n in (1, full)]
        try:
            for prompt, n, patching, params in runs:
                streams = [self.engine.submit(prompt, params, patching) for _ in range(n)]
                for stream in streams:
                    for _ in stream:
                        pass
        except Exception as err:          # the engine still works, paying the compile on first use
            log.exception("warm-up failed")
            self.error = public_message(f"warm-up failed: {type(err).__name__}: {err}", self.name)
        self._freeze_heap()
        self.warmup_s, self.state = round(time.perf_counter() - t0, 1), "ready"
        log.info("warm-up done in %.1f s", self.warmup_s)

    @staticmethod
    def _freeze_heap() -> None:
        """The heap the load and warm-up made lives as long as the worker: out of the collector's
        way, so that no later collection pauses the worker to walk it (app/gc_pauses.py)."""
        t0 = time.perf_counter()
        frozen = gc_pauses.freeze()
        log.info("froze %d objects for the garbage collector in %.2f s", frozen, time.perf_counter() - t0)

    def describe(self) -> dict:
        """What /healthz and /api/models say about the model; never blocks."""
        info = {"name": display_name(self.name) if self.name else "default model",
                "loaded": self.loaded is not None, "state": self.state,
                "error": self.error, "generations_running": self.generation.in_use,
                "torch_threads": torch.get_num_threads(), "gc": gc_pauses.PAUSES.describe()}
        if self.engine is not None:
            info["serving"] = {"path": describe_options(self.engine.options), "batching": "continuous",
                               "slots": self.engine.slots, "running": self.engine.running(),
                               "warmup_s": self.warmup_s,
                               "engine": {k: round(v, 3) for k, v in self.engine.counts.items()}}
            if self.engine.model.device.type == "cuda":
                info["gpu_peak_mib"] = round(torch.cuda.max_memory_allocated(self.engine.model.device) / 2**20)
        if self.loaded is not None:
            model = self.loaded.model
            cfg = model.config
            info.update({
                "name": display_name(self.loaded.name), "trained": self.loaded.trained, "device": str(model.device),
                "dtype": str(model.lm_head.weight.dtype).removeprefix("torch."), "params": model.num_params(),
                "default_threshold": cfg.patching_threshold, "config": config_summary(cfg)})
        return info


def display_name(name: str) -> str:
    """How answers name a path (no server paths in answers): one inside the repository by its path
    relative to it, any other absolute one by its last component; a relative path or repo id as given."""
    path = Path(name)
    if not path.is_absolute():
        return name
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else path.name


# An absolute path in a message: '/' not inside a word, a relative path or a URL ('https://host/x').
ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/-])/[^\s'\"`:,;()\[\]{}<>]+")


def public_message(text: str, model_name: str | None) -> str:
    """text with server paths taken out: the configured model path, and then any other absolute
    path, as display_name shows them (a file in the model directory keeps the model's name)."""
    model = Path(model_name) if model_name else None
    if model is not None and model.is_absolute() and model.name:
        text = text.replace(str(model), display_name(str(model)))
    return ABSOLUTE_PATH.sub(lambda m: display_name(m.group()), text)


def config_summary(cfg) -> dict:
    """The parts of a BLTConfig a page shows (widths, depths, patching defaults, contexts)."""
    stacks = {"encoder": cfg.encoder, "global": cfg.global_model, "decoder": cfg.decoder,
              "entropy_model": cfg.entropy_model}
    return {
        "patching_mode": cfg.patching_mode, "patching_threshold": cfg.patching_threshold,
        "patch_size": cfg.patch_size, "max_patch_length": cfg.max_patch_length,
        "cross_attn_k": cfg.cross_attn_k, "encoder_pooling": cfg.encoder_pooling,
        "stacks": {name: None if s is None else {"dim": s.dim, "layers": s.n_layers, "heads": s.n_heads,
                                                  "context": s.max_seq_len, "sliding_window": s.sliding_window}
                   for name, s in stacks.items()},
    }
