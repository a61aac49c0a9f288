"""Limits and defaults of BLT Studio. Each key can be set by the `config` dict given to
`create_app`, or by the environment variable `BLT_<KEY>` (e.g. `BLT_MAX_TEXT_BYTES=32768`).

Sizes are bytes (MiB where the key ends in _MB); times are seconds. `/api/models` reports the limits the app runs with.
"""
from __future__ import annotations

import os
from pathlib import Path

from .security import PAGE_POLICY

REPO_ROOT = Path(__file__).resolve().parents[1]

DEFAULTS = {
    "MODEL": None,                  # checkpoint dir, HF repo id or random:<preset>; None: blt_core's default
    "DEVICE": None,                 # None: cuda when available, else cpu
    "MAX_REQUEST_BYTES": 262_144,   # whole request body (JSON escapes can make text 6x longer)
    "MAX_TEXT_BYTES": 16_384,       # UTF-8 bytes of `text` / `prompt`
    "MAX_CORPUS_BYTES": 1_048_576,  # UTF-8 bytes of a corpus (/api/corpus: the raw body); ~2 min on 2 CPU cores
    "CORPUS_SLOTS": 1,              # corpus analyses at once (each also holds an analysis slot); one more: 429
    "MAX_NEW_BYTES": 1024,          # generation length cap
    "DEFAULT_NEW_BYTES": 200,
    "MAX_STOP_STRINGS": 4,
    "MAX_STOP_BYTES": 64,
    "THRESHOLD_RANGE": (-6.0, 6.0),        # nats; next-byte entropy is at most ln(260) = 5.56
    "MAX_PATCH_LENGTH": 256,
    "MAX_PATCH_SIZE": 256,
    "MAX_TEMPERATURE": 10.0,
    "MAX_TOP_K": 260,
    "REPETITION_PENALTY_RANGE": (0.1, 10.0),
    "DETAIL_MAX_BYTES": 64,         # bytes per /api/entropy/detail request (a page asks for a block at a time)
    "DETAIL_MAX_TOP_K": 20,         # next-byte candidates per byte there
    "GENERATION_SLOTS": 0,          # generations batched at once (one more gets 429 at once); 0: 8 on CUDA, 4 on CPU
    "DECODE": "fastest",            # "fastest" exact path for the device (CUDA: graphs + compile + kernels), or "eager"
    "ANALYSIS_SLOTS": 0,            # entropy/patch/compare requests at once; 0: sized from the memory:
    "ANALYSIS_MEMORY_MB": 96,       # MiB over one worst-case analysis of the model (app/memory.py); 4 on the shipped one
    "ANALYSIS_WAIT_S": 1.0,         # how long an analysis request waits for a slot before 429
    "ENTROPY_MEMO_MB": 32,          # entropy-model state of recent texts, so an edit recomputes only from its first change; 0: off
    "FIGURE_CACHE_MB": 16,          # built figure documents kept (MiB), least recently used dropped
    # Serving (app/bridge.py, app/worker.py): threads run views only; sockets wait on the event loop.
    "REQUEST_THREADS": 16,          # views at once: more than generation + analysis slots, so streams never starve analyses
    "HEAD_TIMEOUT_S": 10.0,         # a connection's first request line and headers must arrive in time
    "READ_TIMEOUT_S": 15.0,         # the whole request body must arrive in time (else 408)
    "WRITE_TIMEOUT_S": 30.0,        # a client that reads nothing for this long is dropped
    "PLOT_DATA_DIR": str(REPO_ROOT / "plot_data"),
    "EXPORT_DIR": str(REPO_ROOT / "exports"),
    # Sent with every response; the stored-file and figure endpoints send their own policy (security.py).
    "SECURITY_HEADERS": {
        "Content-Security-Policy": PAGE_POLICY,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
    },
}


def _from_env(key: str, default):
    """BLT_<KEY> parsed as the default's type (pairs as 'lo,hi'); unset: the default."""
    raw = os.environ.get(f"BLT_{key}")
    if raw is None or isinstance(default, dict):
        return default
    if isinstance(default, tuple):
        return tuple(float(x) for x in raw.split(","))
    if isinstance(default, (int, float)):
        return type(default)(raw)
    return raw or None


def load(config: dict | None = None) -> dict:
    """The defaults, overridden by the environment, overridden by `config`."""
    settings = {key: _from_env(key, value) for key, value in DEFAULTS.items()}
    settings.update(config or {})
    return settings
