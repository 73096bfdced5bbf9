"""The worker pool the bus runs collections on.

Why not :class:`concurrent.futures.ThreadPoolExecutor`: its threads are not
daemon threads and the interpreter joins them at exit, so one collector hung in
a system call (the very case the bus timeout exists for) would hang the exit
of the whole process. These threads are named daemon threads.

A collection that times out keeps its thread until it returns. :meth:`grow`
then adds a thread so the other collectors keep their workers, and
:meth:`shrink` retires one once the late collection has returned.

**Beats.** A job may return a :class:`Beat`: the next job it wants to run on
the same thread, and when. The thread then sleeps until that time and runs it
itself, with no hand-off from another thread (the bus uses this so that a
collector's ticks cost one thread wake each, not two; see
:mod:`collectbus.bus.scheduler`). A thread keeping a beat still counts as
free: when a job comes and no other thread is idle, it takes the job and gives
the beat back (``Beat.drop``), as it does at shutdown.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from collectbus.clock import NS_PER_S
from collectbus.errors import BusError


@dataclass(frozen=True, slots=True)
class Beat:
    """A job's next job, to run on the same thread at ``at_ns``."""

    #: When to run ``job`` (``time.monotonic_ns``).
    at_ns: int
    job: Job
    #: Called instead of ``job`` when the thread is needed for something else.
    drop: Callable[[], None]


Job = Callable[[], "Beat | None"]


class WorkerPool:
    """A fixed number of daemon threads taking jobs from one queue.

    Each idle thread sleeps on a lock of its own, and a job wakes exactly one
    of them, the one that went idle last (its stack and caches are warm); a
    thread keeping a beat only when no other is idle. One shared blocking
    queue would wake more than one sleeper per job.
    """

    def __init__(self, size: int, *, name: str = "collectbus-collect") -> None:
        if size < 1:
            raise BusError(f"bus workers: need at least 1 worker thread, got {size}")
        self._name = name
        self._target = size
        self._live = 0
        self._spawned = 0
        self._closed = False
        self._lock = threading.Lock()  # guards everything below
        #: Jobs not taken yet; None tells the thread that takes it to exit.
        self._jobs: deque[Job | None] = deque()
        #: The bells of the idle threads (each held; released to wake its thread).
        self._idle: list[threading.Lock] = []
        #: The bells of the threads sleeping until a beat (idle too).
        self._keeping: list[threading.Lock] = []

    def submit(self, job: Job) -> None:
        """Run ``job`` on a worker thread; threads are started on first use."""
        with self._lock:
            if self._closed:
                raise BusError("the bus is stopped: no more collections can run")
            while self._live < self._target:
                self._spawn()
            self._put(job)

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
                self._put(None)

    def shutdown(self) -> None:
        """Let every idle thread exit; a thread still running a job ends after it."""
        with self._lock:
            self._closed = True
            for _ in range(self._live):
                self._put(None)

    def _put(self, job: Job | None) -> None:
        """(lock held) Queue ``job`` and wake one idle thread, if any."""
        self._jobs.append(job)
        if self._idle:
            self._idle.pop().release()
        elif self._keeping:
            self._keeping.pop().release()

    def _spawn(self) -> None:
        self._spawned += 1
        self._live += 1
        thread = threading.Thread(
            target=self._work, name=f"{self._name}-{self._spawned}", daemon=True
        )
        thread.start()

    def _work(self) -> None:
        bell = threading.Lock()
        bell.acquire()
        beat: Beat | None = None
        try:
            while True:
                with self._lock:
                    if self._jobs:
                        job = self._jobs.popleft()
                    elif beat is None:
                        self._idle.append(bell)
                        job = _IDLE
                    else:
                        self._keeping.append(bell)
                        job = _IDLE
                if job is _IDLE and beat is None:
                    bell.acquire()  # until a job (or an exit) is put for this thread
                    continue
                if job is _IDLE:
                    assert beat is not None
                    left = beat.at_ns - time.monotonic_ns()
                    rung = left > 0 and bell.acquire(True, left / NS_PER_S)
                    if not rung:
                        with self._lock:
                            rung = bell not in self._keeping
                            if not rung:
                                self._keeping.remove(bell)
                        if rung:  # a job came just as the beat was due
                            bell.acquire()  # take back the release
                    if not rung:
                        job, beat = beat.job, None
                if beat is not None:  # a job (or an exit) came first: the beat goes back
                    beat.drop()
                    beat = None
                if job is _IDLE:
                    continue
                if job is None:
                    return
                beat = job()
        finally:
            if beat is not None:
                beat.drop()
            with self._lock:
                self._live -= 1


def _idle() -> None:
    """Marks "no job yet" in a worker's loop (never run)."""
    return None


_IDLE: Job = _idle
