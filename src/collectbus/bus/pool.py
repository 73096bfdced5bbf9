"""The worker pool the bus runs collections on.

Why not :class:`concurrent.futures.ThreadPoolExecutor`: its threads are not
daemon threads and the interpreter joins them at exit, so one collector hung in
a system call (the very case the bus timeout exists for) would hang the exit
of the whole process. These threads are named daemon threads.

A collection that times out keeps its thread until it returns. :meth:`grow`
then adds a thread so the other collectors keep their workers, and
:meth:`shrink` retires one once the late collection has returned.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from collectbus.errors import BusError

Job = Callable[[], None]


class WorkerPool:
    """A fixed number of daemon threads taking jobs from one queue."""

    def __init__(self, size: int, *, name: str = "collectbus-collect") -> None:
        if size < 1:
            raise BusError(f"bus workers: need at least 1 worker thread, got {size}")
        self._name = name
        self._target = size
        self._live = 0
        self._spawned = 0
        self._closed = False
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()

    def submit(self, job: Job) -> None:
        """Run ``job`` on a worker thread; threads are started on first use."""
        with self._lock:
            if self._closed:
                raise BusError("the bus is stopped: no more collections can run")
            while self._live < self._target:
                self._spawn()
        self._jobs.put(job)

    def grow(self) -> None:
        """Add one thread: a job overran its timeout and still holds a worker."""
        with self._lock:
            self._target += 1
            if not self._closed:
                self._spawn()

    def shrink(self) -> None:
        """Retire one thread: the late job that :meth:`grow` made up for returned."""
        with self._lock:
            self._target -= 1
            if self._live > self._target:
                self._jobs.put(None)

    def shutdown(self) -> None:
        """Let every idle thread exit; a thread still running a job ends after it."""
        with self._lock:
            self._closed = True
            for _ in range(self._live):
                self._jobs.put(None)

    def _spawn(self) -> None:
        self._spawned += 1
        self._live += 1
        thread = threading.Thread(
            target=self._work, name=f"{self._name}-{self._spawned}", daemon=True
        )
        thread.start()

    def _work(self) -> None:
        try:
            while (job := self._jobs.get()) is not None:
                job()
        finally:
            with self._lock:
                self._live -= 1
