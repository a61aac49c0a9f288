"""The one thread on which a CPU server runs all of its torch work (app/models.py).

torch's CPU parallelism is GNU OpenMP (libgomp). libgomp counts the threads it manages: the
process's first thread, plus the other members of every thread's team, kept while that thread
lives. While the count is at most the CPUs, a team's idle threads spin (300,000 turns) waiting
for the next parallel region; once it exceeds them, every team in the process spins only 100
turns and then sleeps on a futex. An entropy pass is ~1,000 small parallel regions, so the
sleeps add up: the pass on 2 kB took 61 ms in a plain process on 2 cores and ~99 ms in the
server, where every request thread that ran an analysis, and the generation engine's thread,
had a team of its own. One thread running all of it keeps the count at 1 + its one other team
member, the same as a plain process's (which thread it is does not matter).

Jobs run one at a time, in the order they come, except that `run_first` jobs (the generation
engine's steps, a few ms each) go before the queued ones: a streaming generation waits for the
job that is running, not for every analysis in the queue.
"""
from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future


class TorchThread:
    def __init__(self, name: str = "torch"):
        self._first: deque = deque()
        self._queue: deque = deque()
        self._cv = threading.Condition()
        self.thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self.thread.start()

    def run(self, fn, *args, **kwargs):
        """fn(*args, **kwargs) on the thread, after the jobs queued before it; raises what fn raises."""
        return self._submit(self._queue, fn, args, kwargs).result()

    def run_first(self, fn):
        """fn() on the thread, before any queued `run` job."""
        return self._submit(self._first, fn, (), {}).result()

    def _submit(self, queue: deque, fn, args, kwargs) -> Future:
        future = Future()
        with self._cv:
            queue.append((future, fn, args, kwargs))
            self._cv.notify()
        return future

    def _serve(self) -> None:
        while True:
            with self._cv:
                while not self._first and not self._queue:
                    self._cv.wait()
                future, fn, args, kwargs = (self._first or self._queue).popleft()
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as err:        # raised again in the caller's thread
                future.set_exception(err)
