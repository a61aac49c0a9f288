"""The serving worker's garbage-collector bookkeeping (app/gc_pauses.py): collections counted per
generation with their pauses, and the heap frozen out of the collector's way."""
from __future__ import annotations

import gc

from app.gc_pauses import GcPauses, freeze


def test_collections_are_counted_per_generation_with_their_pauses():
    pauses = GcPauses()
    pauses.watch()
    pauses.watch()                                   # once only
    try:
        assert gc.callbacks.count(pauses._callback) == 1
        gc.collect(0)
        gc.collect()
        gc.collect()
    finally:
        gc.callbacks.remove(pauses._callback)
    described = pauses.describe()["collections"]
    assert described["0"]["count"] >= 1 and described["2"]["count"] >= 2
    assert described["2"]["total_ms"] >= described["2"]["longest_ms"] > 0
    assert pauses.longest_ms[2] <= pauses.total_ms[2]


def test_freeze_takes_what_is_alive_out_of_later_collections():
    alive = [[1], {"a": []}]                         # containers the collector tracks
    assert any(obj is alive for obj in gc.get_objects())
    try:
        assert freeze() > 0                          # (other threads may free frozen objects meanwhile)
        assert not any(obj is alive for obj in gc.get_objects())
        made_after = [[2]]
        assert any(obj is made_after for obj in gc.get_objects())
    finally:
        gc.unfreeze()                                # the test process's later tests keep a normal collector
