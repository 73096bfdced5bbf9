"""What the wrappers of one handler share: its id, its totals, its slow paths.

**Entries.** The history is a ``deque(maxlen)`` of plain tuples::

    (handler id, start, elapsed, thread id, detail)

``start`` is in performance-counter nanoseconds, turned into wall time only
when queried; ``elapsed`` is in nanoseconds. ``detail`` is None for a plain successful call, else a
:data:`Detail` tuple of strings (the arguments: tuples of strings, joined when queried). Tuples of scalars keep a full garbage
collection cheap; dicts or lists in the entries made it 10x slower
(docs/architecture.md, "Recording calls").

**Totals without a lock.** Each thread counts its own calls, errors and
nanoseconds in a :class:`ThreadTotals` that only it writes; readers add up
every thread's totals. So the counts stay exact after the history has
evicted the entries, with no lock and no read-modify-write shared between
threads. A thread finds its totals through a ``threading.local``; a new
thread that gets the identifier of a finished one continues that one's totals,
so their number stays bounded by the number of threads alive at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from collectbus.calls.capture import ArgTexts, Formatter

#: (error type, error message, traceback, args, result); each may be None.
Detail = tuple[str | None, str | None, str | None, ArgTexts | None, str | None]
Entry = tuple[int, int, int, int, Detail | None]


class ThreadTotals:
    """The calls one thread made to one handler; written by that thread only."""

    __slots__ = ("calls", "errors", "ns", "tid")

    def __init__(self, tid: int) -> None:
        self.tid = tid
        self.calls = 0
        self.errors = 0
        self.ns = 0


class Handler:
    """One handler name: its totals, and the recording paths that are not inlined."""

    def __init__(
        self,
        hid: int,
        name: str,
        qualname: str,
        *,
        append: Callable[[Entry], None],
        formatter: Formatter,
        skip_frame: Callable[[str], bool],
        switcher: str | None = None,
    ) -> None:
        self.hid = hid
        self.name = name
        self.qualname = qualname
        #: The smartswitch Switcher (or other dispatcher) the handler belongs to.
        self.switcher = switcher
        self.local = threading.local()
        self._by_thread: dict[int, ThreadTotals] = {}
        self._append = append
        self._formatter = formatter
        self._skip_frame = skip_frame
        #: Lifetime totals at the last clear(): stats subtract them.
        self.base: tuple[int, int, int] = (0, 0, 0)

    def thread_totals(self) -> ThreadTotals:
        """This thread's totals, found or created on its first call."""
        tid = threading.get_ident()
        totals = self._by_thread.get(tid)
        if totals is None:
            # Only this thread ever uses the key ``tid`` while it lives, so
            # this check-then-insert cannot race.
            totals = self._by_thread[tid] = ThreadTotals(tid)
        self.local.st = totals
        return totals

    def _mine(self) -> ThreadTotals:
        try:
            totals: ThreadTotals = self.local.st
        except AttributeError:
            totals = self.thread_totals()
        return totals

    def lifetime(self) -> tuple[int, int, int]:
        """(calls, errors, nanoseconds) recorded since the collector was made."""
        calls = errors = ns = 0
        for t in list(self._by_thread.values()):  # a copy: threads may add keys meanwhile
            calls += t.calls
            errors += t.errors
            ns += t.ns
        return calls, errors, ns

    def totals(self) -> tuple[int, int, int]:
        """(calls, errors, nanoseconds) since the last clear()."""
        calls, errors, ns = self.lifetime()
        base_calls, base_errors, base_ns = self.base
        return calls - base_calls, errors - base_errors, ns - base_ns

    # The paths below are taken by failed calls, by calls whose arguments are
    # captured, and by async and generator handlers; plain calls are recorded
    # by code inlined in their wrapper (collectbus.calls.codegen).

    def ok(
        self,
        t0: int,
        t1: int,
        args: tuple[object, ...] | None,
        kwargs: Mapping[str, object] | None,
        result: object,
    ) -> None:
        """Record a call that returned."""
        detail: Detail | None = None
        if self._formatter.capture != "none":
            detail = (
                None,
                None,
                None,
                self._formatter.args(args or (), kwargs),
                self._formatter.value(result),
            )
        totals = self._mine()
        totals.calls += 1
        totals.ns += t1 - t0
        self._append((self.hid, t0, t1 - t0, totals.tid, detail))

    def fail(
        self,
        t0: int,
        t1: int,
        exc: BaseException,
        args: tuple[object, ...] | None,
        kwargs: Mapping[str, object] | None,
    ) -> None:
        """Record a call that raised ``exc``."""
        kind, message, tb = self._formatter.error(exc, self._skip_frame)
        detail: Detail = (kind, message, tb, self._formatter.args(args or (), kwargs), None)
        totals = self._mine()
        totals.calls += 1
        totals.errors += 1
        totals.ns += t1 - t0
        self._append((self.hid, t0, t1 - t0, totals.tid, detail))
