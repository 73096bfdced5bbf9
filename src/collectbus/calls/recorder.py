"""CallRecorder: record the calls of a live program; ask what is slow and what fails.

::

    calls = CallRecorder(max_history=10_000)

    @calls
    def handle(request): ...

    @calls(name="db.query")
    async def query(sql): ...

    fetch = calls.wrap(session.get)

    calls.slowest(5); calls.errors(handler="handle"); calls.stats("handle")
    calls.slower_than(threshold=0.1); calls.stats(sort_by="avg_time")

**Recording** costs one ``perf_counter_ns`` pair, an append of a tuple of plain
values to a ``deque(maxlen)`` and this thread's own totals: no lock, no dict,
no live reference (see :mod:`collectbus.calls.handler`). The history keeps the
newest ``max_history`` calls; older ones are evicted and counted, while each
handler's totals stay exact. Sync functions, coroutines, generators and async
generators are supported (:mod:`collectbus.calls.wrappers`).

**Reading** takes a snapshot (``list(deque)`` is atomic under the GIL), so
queries are consistent and safe while other threads keep calling. Times are
turned into wall-clock time when queried. A query's ``handler`` is the full
name or a tail of it after a dot (``process`` for ``api.process``); a tail
that several handlers share raises ValueError naming them
(:mod:`collectbus.calls.names`).
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any, Literal, Protocol, TypeVar, cast, overload

from collectbus.calls.capture import (
    CAPTURES,
    DEFAULT_MAX_TEXT,
    Capture,
    FailureCount,
    Formatter,
    Serializer,
)
from collectbus.calls.export import ExportFormat, document, write_export
from collectbus.calls.handler import Entry, Handler
from collectbus.calls.settings import Settings, Switch
from collectbus.calls.stats import CallStats, StatsTable, sort_stats
from collectbus.calls.view import HistoryView
from collectbus.calls.wrappers import is_wrapper_frame, wrap
from collectbus.clock import NS_PER_S
from collectbus.records import CallRecord, Record

F = TypeVar("F", bound=Callable[..., object])
OFFSET_TOLERANCE_NS = 1_000_000
Nested = Literal["all", "outermost"]


class CallClock(Protocol):
    """The two readings a collector takes; :class:`collectbus.clock.Clock` has both."""

    def monotonic_ns(self) -> int: ...

    def time_ns(self) -> int: ...


class RecordWriter(Protocol):
    """Where :meth:`CallRecorder.flush_to` writes: a :class:`collectbus.store.Store`."""

    def write(self, records: Iterable[Record]) -> int: ...


class Cursor:
    """A reader's place in the history (the bus source, the store flusher).

    ``last`` is the newest entry already delivered, found again by identity;
    ``expected`` and ``delivered`` count entries, so that those evicted before
    this reader saw them are counted as ``missed``.
    """

    __slots__ = ("delivered", "expected", "last", "missed")

    def __init__(self, expected: int) -> None:
        self.last: Entry | None = None
        self.expected = expected
        self.delivered = 0
        self.missed = 0


class CallRecorder:
    """Records calls of the callables it wraps; see the module documentation.

    ``capture``: ``"none"``, ``"summary"`` (types and sizes of the arguments
    and result), ``"repr"`` (truncated reprs) or ``"json"`` (JSON values).
    ``serialize``: capture JSON (``True``: a value JSON has no form for is
    written as its ``str()``; a function: it turns such a value into one JSON
    has, as ``json.dumps(default=...)``); see :mod:`collectbus.calls.capture`.
    ``sample``: the fraction of
    calls recorded; with ``always_record_errors`` every failed call is recorded
    anyway, and with ``slow_threshold`` (seconds) every call at least that
    slow. ``nested="outermost"`` records only the outermost of calls nested in
    one thread or task (recursion). ``clock`` replaces the performance counter
    and wall clock, for tests.
    """

    def __init__(
        self,
        max_history: int = 10_000,
        *,
        capture: Capture = "none",
        serialize: bool | Serializer | None = None,
        sample: float = 1.0,
        always_record_errors: bool = True,
        slow_threshold: float | None = None,
        nested: Nested = "all",
        enabled: bool = True,
        clock: CallClock | None = None,
        host: str | None = None,
        max_text: int = DEFAULT_MAX_TEXT,
    ) -> None:
        if max_history < 1:
            raise ValueError(f"max_history must be at least 1, got {max_history}")
        if capture not in CAPTURES:
            raise ValueError(f"capture must be none, summary, repr or json, got {capture!r}")
        serializer: Serializer = str
        if serialize is not None and serialize is not False:
            if capture not in ("none", "json"):
                raise ValueError(f"give capture={capture!r} or serialize=, not both")
            if serialize is not True and not callable(serialize):
                raise TypeError(f"serialize must be True or a function, got {serialize!r}")
            capture = "json"
            serializer = str if serialize is True else serialize
        if not 0.0 <= sample <= 1.0:
            raise ValueError(f"sample must be between 0 and 1, got {sample}")
        if slow_threshold is not None and slow_threshold < 0:
            raise ValueError(f"slow_threshold must be positive, got {slow_threshold}")
        if nested not in ("all", "outermost"):
            raise ValueError(f"nested must be all or outermost, got {nested!r}")
        self.max_history = max_history
        self.capture: Capture = capture
        self.sample = sample
        self.nested: Nested = nested
        self.host = host or socket.gethostname()
        self._history: deque[Entry] = deque(maxlen=max_history)
        self._mono = time.perf_counter_ns if clock is None else clock.monotonic_ns
        self._wall = time.time_ns if clock is None else clock.time_ns
        self._wall_offset = self._wall() - self._mono()
        self._lost: list[int] = []
        self._lost_total = 0
        self._failures = FailureCount()
        self.max_text = max_text
        self._formatter = Formatter(capture, max_text, self._failures, serializer)
        self._slow_ns = None if slow_threshold is None else int(slow_threshold * NS_PER_S)
        self._settings = Settings(
            switch=Switch(enabled),
            clock=self._mono,
            random=random.random,
            sample=sample,
            errors_always=always_record_errors,
            slow_ns=self._slow_ns,
            capture=capture,
            active=ContextVar(f"collectbus_call_{id(self)}", default=False)
            if nested == "outermost"
            else None,
            append=self._history.append,
            lost=self._lost.append,
        )
        self._handlers: list[Handler] = []
        self._by_name: dict[str, Handler] = {}
        self._lock = threading.Lock()  # registration and clear(); never taken by a call
        self._flush_lock = threading.Lock()
        self._flush_cursor = Cursor(0)

    # ------------------------------------------------------------ wrapping

    @overload
    def __call__(self, fn: F, /) -> F: ...

    @overload
    def __call__(self, fn: None = None, /, *, name: str | None = None) -> Callable[[F], F]: ...

    def __call__(self, fn: F | None = None, /, *, name: str | None = None) -> F | Callable[[F], F]:
        """``@collector`` or ``@collector(name="...")``."""
        if fn is None:
            return lambda f: self.wrap(f, name=name)
        return self.wrap(fn, name=name)

    def wrap(
        self,
        fn: F,
        *,
        name: str | None = None,
        qualname: str | None = None,
        switcher: str | None = None,
    ) -> F:
        """A wrapper of ``fn`` that records its calls under ``name`` (default:
        its qualified name, ``Class.method``, without ``<locals>``). Wrappers
        given the same name share one handler. ``qualname`` replaces the
        ``module.qualname`` that records carry (for a plugin wrapping a layer);
        ``switcher`` names the dispatcher the handler belongs to (entries carry it)."""
        if isinstance(fn, staticmethod | classmethod):
            # Decorated above @staticmethod or @classmethod: wrap the function
            # inside, and keep the method kind.
            inner = self.wrap(fn.__func__, name=name, qualname=qualname, switcher=switcher)
            return cast(F, type(fn)(inner))
        if not callable(fn):
            raise TypeError(f"cannot record calls of {type(fn).__name__}: it is not callable")
        own = getattr(fn, "__qualname__", None) or type(fn).__qualname__
        module = getattr(fn, "__module__", None) or type(fn).__module__
        default = own.replace(".<locals>", "")
        handler = self._handler(name or default, qualname or f"{module}.{own}", switcher)
        return cast(F, wrap(fn, handler, self._settings))

    def _handler(self, name: str, qualname: str, switcher: str | None) -> Handler:
        with self._lock:
            handler = self._by_name.get(name)
            if handler is None:
                handler = Handler(
                    len(self._handlers),
                    name,
                    qualname,
                    append=self._settings.append,
                    formatter=self._formatter,
                    skip_frame=is_wrapper_frame,
                    switcher=switcher,
                )
                self._handlers.append(handler)
                self._by_name[name] = handler
            return handler

    # --------------------------------------------------------------- state

    @property
    def enabled(self) -> bool:
        """Whether calls are recorded; switching off takes effect at once."""
        return self._settings.switch.on

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self._settings.switch.on = bool(value)

    @property
    def handlers(self) -> list[str]:
        """The handler names, in the order they were first wrapped."""
        return [h.name for h in list(self._handlers)]

    @property
    def held(self) -> int:
        """Calls in the history now."""
        return len(self._history)

    @property
    def recorded(self) -> int:
        """Calls recorded since the collector was made or last cleared."""
        return sum(h.totals()[0] for h in list(self._handlers))

    @property
    def evicted(self) -> int:
        """Recorded calls the history has dropped to stay within ``max_history``.

        Exact whenever no recorded call is in flight in another thread."""
        return max(0, self.recorded - len(self._history))

    @property
    def lost(self) -> int:
        """Calls whose recording failed (at the recursion limit); not in any total."""
        # Deleting the counted prefix is one C-level operation, so appends made
        # meanwhile by other threads are kept.
        n = len(self._lost)
        del self._lost[:n]
        self._lost_total += n
        return self._lost_total

    @property
    def format_failures(self) -> int:
        """Arguments, results or messages whose ``repr``/``str`` raised."""
        return self._failures.value

    def clear(self) -> None:
        """Forget the history and start the totals again from zero."""
        with self._lock:
            for handler in self._handlers:
                handler.base = handler.lifetime()
            self._history.clear()

    # -------------------------------------------------------------- queries

    def _offset(self) -> int:
        """Wall-clock minus performance-counter nanoseconds.

        Kept while it stays within a millisecond of a fresh reading, so that one
        call gets the same start time in every query and every export; a wall
        clock that is stepped or slewed further than that is followed.
        """
        fresh = self._wall() - self._mono()
        if abs(fresh - self._wall_offset) > OFFSET_TOLERANCE_NS:
            self._wall_offset = fresh
        return self._wall_offset

    def view(self) -> HistoryView:
        """A snapshot of the history to query (what every query below uses)."""
        entries = list(self._history)
        return HistoryView(
            entries=entries,
            offset=self._offset(),
            handlers=list(self._handlers),
            by_name=dict(self._by_name),
            host=self.host,
            sample=self.sample,
            slow_ns=self._slow_ns,
            as_json=self.capture == "json",
            max_text=self.max_text,
        )

    def history(
        self,
        *,
        last: int | None = None,
        first: int | None = None,
        handler: str | None = None,
        errors: bool | None = None,
        since: float | None = None,
    ) -> list[CallRecord]:
        """Held calls, oldest first: only ``handler``'s, only failed ones
        (``errors=True``) or successful ones (``False``), only those started at
        or after ``since`` (Unix time in seconds); then the ``first`` or ``last`` n."""
        view = self.view()
        return view.at(
            view.query(last=last, first=first, handler=handler, errors=errors, since=since)
        )

    def errors(self, *, handler: str | None = None, last: int | None = None) -> list[CallRecord]:
        """Held failed calls, oldest first."""
        view = self.view()
        return view.at(view.query(handler=handler, errors=True, last=last))

    def slowest(self, n: int = 10, *, handler: str | None = None) -> list[CallRecord]:
        """The ``n`` slowest held calls, slowest first."""
        view = self.view()
        return view.at(view.query(handler=handler, slowest=n))

    def fastest(self, n: int = 10, *, handler: str | None = None) -> list[CallRecord]:
        """The ``n`` fastest held calls, fastest first."""
        view = self.view()
        return view.at(view.query(handler=handler, fastest=n))

    def slower_than(
        self,
        seconds: float | None = None,
        *,
        threshold: float | None = None,
        handler: str | None = None,
    ) -> list[CallRecord]:
        """Held calls that took at least ``seconds`` (or ``threshold=``,
        smartswitch's name), oldest first."""
        view = self.view()
        return view.at(view.query(handler=handler, slower_than=pick_threshold(seconds, threshold)))

    @overload
    def stats(self, handler: str, *, sort_by: None = None) -> CallStats: ...

    @overload
    def stats(self, handler: None = None, *, sort_by: str | None = None) -> StatsTable: ...

    def stats(
        self, handler: str | None = None, *, sort_by: str | None = None
    ) -> CallStats | StatsTable:
        """One handler's :class:`~collectbus.calls.stats.CallStats`, or every
        handler's by name (a dict, in the order of the handlers, or of
        ``sort_by``: see :func:`~collectbus.calls.stats.sort_stats`)."""
        view = self.view()
        if handler is None:
            return sort_stats(view.stats(view.handlers), sort_by)
        if sort_by is not None:
            raise ValueError("sort_by orders every handler's statistics; give no handler")
        known = view.handler(handler)
        if known is None:
            return view.empty_stats(handler)
        return view.stats([known])[known.name]

    def to_dict(self) -> dict[str, Any]:
        """Counters, statistics and held calls as plain values (the json export)."""
        view = self.view()
        meta = {
            "host": self.host,
            "pid": view.pid,
            "enabled": self.enabled,
            "max_history": self.max_history,
            "capture": self.capture,
            "sample": self.sample,
            "nested": self.nested,
            "held": len(view.entries),
            "recorded": self.recorded,
            "evicted": self.evicted,
            "lost": self.lost,
            "format_failures": self.format_failures,
        }
        return document(meta, view.stats(view.handlers), view.records(view.entries))

    def export(self, path: str | os.PathLike[str], format: ExportFormat = "json") -> int:
        """Write the held calls to ``path`` as ``json`` (the :meth:`to_dict`
        document) or ``jsonl`` (one call per line); return how many."""
        if format == "json":
            doc = self.to_dict()
            return write_export(path, format, doc, doc["records"])
        view = self.view()
        return write_export(path, format, {}, view.records(view.entries))

    # ------------------------------------------------------------ delivery

    def cursor(self) -> Cursor:
        """A new reader's place: it will get every call held now and after."""
        lifetime = sum(h.lifetime()[0] for h in list(self._handlers))
        return Cursor(lifetime - len(self._history))

    def peek(self, cursor: Cursor) -> tuple[list[CallRecord], Entry | None]:
        """The calls after ``cursor``, and the entry to advance it to."""
        view = self.view()
        entries = view.entries
        start = 0
        if cursor.last is not None:
            # Searched from the newest end: usually only the new entries are passed.
            for i in range(len(entries) - 1, -1, -1):
                if entries[i] is cursor.last:
                    start = i + 1
                    break
        new = entries[start:]
        return view.records(new), (new[-1] if new else cursor.last)

    def advance(self, cursor: Cursor, last: Entry | None, delivered: int) -> None:
        """Move ``cursor`` past ``delivered`` calls ending with ``last``."""
        cursor.last = last
        cursor.delivered += delivered
        lifetime = sum(h.lifetime()[0] for h in list(self._handlers))
        cursor.missed = max(0, lifetime - cursor.expected - cursor.delivered)

    def take(self, cursor: Cursor) -> list[CallRecord]:
        """The calls after ``cursor``; the cursor moves past them."""
        records, last = self.peek(cursor)
        self.advance(cursor, last, len(records))
        return records

    def flush_to(self, store: RecordWriter) -> int:
        """Write the calls recorded since the last flush to ``store`` (one
        transaction) and return how many. If the write fails, it raises and the
        same calls are offered again by the next flush (unless evicted meanwhile)."""
        with self._flush_lock:
            records, last = self.peek(self._flush_cursor)
            if records:
                store.write(records)
            self.advance(self._flush_cursor, last, len(records))
            return len(records)

    @property
    def flush_missed(self) -> int:
        """Calls evicted from the history before a flush could write them."""
        return self._flush_cursor.missed


def pick_threshold(seconds: float | None, threshold: float | None) -> float:
    """The time limit given as ``seconds`` or as ``threshold=``, exactly one of them."""
    if (seconds is None) == (threshold is None):
        raise TypeError("slower_than() takes the time in seconds, as seconds or threshold=, once")
    return float(seconds if seconds is not None else threshold)  # type: ignore[arg-type]
