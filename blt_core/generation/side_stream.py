"""The second stream of a byte step, optionally on its own share of the GPU's SMs.

The speculative and decoder-first steps run the entropy model (and the boundary decision and
bookkeeping) on a second stream beside the critical chain (encoder, decoder, global model). Every
kernel of both chains is short and launch-bound, and each launch spreads its programs over all
SMs, so the side chain's programs hold SM slots that the critical chain's next kernel waits for.
A CUDA green context confines a stream's kernels to a set number of SMs: the side chain then runs
slower on its own SMs, off the critical path, and the critical chain meets fewer of its programs
(bench/README.md has the measured trade). The critical chain keeps every SM: confining it to the
rest was slower.
"""
from __future__ import annotations

import threading

import torch

_LOCK = threading.Lock()
_CONTEXTS: dict[tuple[int, int], object] = {}       # (device index, SMs) -> green context, kept


def side_stream(device: torch.device, sms: int | None) -> torch.cuda.Stream:
    """A stream for a step's side chain on CUDA `device`: a plain one (sms None), or one of a
    green context of `sms` SMs (made once per device and count, kept for the process)."""
    if sms is None:
        return torch.cuda.Stream(device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    total = torch.cuda.get_device_properties(index).multi_processor_count
    if not 0 < sms < total:
        raise ValueError(f"side_sms must be between 1 and {total - 1} on this GPU ({total} SMs), found {sms}")
    from torch.cuda import green_contexts
    if not green_contexts.SUPPORTED:
        raise RuntimeError(f"side_sms={sms} needs CUDA green contexts, which this PyTorch build lacks: "
                           "leave side_sms unset")
    with _LOCK:
        if (index, sms) not in _CONTEXTS:
            _CONTEXTS[index, sms] = green_contexts.GreenContext.create(num_sms=sms, device_id=index)
        return _CONTEXTS[index, sms].Stream()
