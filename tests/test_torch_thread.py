"""app/torch_thread.py: one thread runs every job, one at a time; the engine's steps (run_first)
go before queued jobs; a job's exception is raised in its caller."""
from __future__ import annotations

import threading
import time

import pytest

from app.torch_thread import TorchThread


def wait_until(condition, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_jobs_run_on_the_one_thread_and_raise_in_the_caller():
    torch_thread = TorchThread(name="torch-test")
    assert torch_thread.run(lambda a, b=0: (threading.current_thread().name, a + b), 1, b=2) == ("torch-test", 3)
    with pytest.raises(ValueError, match="bad input"):
        torch_thread.run(lambda: int("bad input"))
    assert torch_thread.run_first(lambda: threading.current_thread().name) == "torch-test"


def test_run_first_goes_before_queued_jobs():
    torch_thread, running, release, order = TorchThread(), threading.Event(), threading.Event(), []
    holder = threading.Thread(target=torch_thread.run, args=(lambda: (running.set(), release.wait()),))
    holder.start()
    running.wait(timeout=5)                                      # the thread is busy: the rest queue
    callers = [threading.Thread(target=torch_thread.run, args=(order.append, f"analysis {i}")) for i in (1, 2)]
    callers += [threading.Thread(target=torch_thread.run_first, args=(lambda: order.append("step"),))]
    for queued, caller in enumerate(callers, start=1):
        caller.start()
        wait_until(lambda: len(torch_thread._queue) + len(torch_thread._first) == queued)   # in this order
    release.set()
    for caller in (holder, *callers):
        caller.join(timeout=5)
    assert order == ["step", "analysis 1", "analysis 2"]
