"""Queries over one snapshot of a collector's history.

A :class:`HistoryView` holds a copy of the history (``list(deque)``, atomic
under the GIL) and the offset from performance-counter to wall-clock time,
both taken at once. Every answer it gives is about that one moment, whatever
other threads record meanwhile. Filters and sorts run on NumPy columns of the
entries and give indices; only the calls returned become
:class:`~collectbus.records.CallRecord` (or :class:`~collectbus.calls.entry.CallEntry`).

A handler is named in full or by a tail of its name (:mod:`collectbus.calls.names`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from collectbus.calls.capture import args_document, args_line
from collectbus.calls.entry import CallEntry
from collectbus.calls.handler import Entry, Handler
from collectbus.calls.names import find_handler
from collectbus.calls.stats import (
    CallStats,
    EntryColumns,
    group,
    stats_row,
)
from collectbus.clock import NS_PER_S
from collectbus.records import CallRecord

Index = npt.NDArray[np.intp]


@dataclass(slots=True, kw_only=True)
class HistoryView:
    """The history at one moment, and what is needed to describe its entries."""

    entries: list[Entry]
    #: Wall-clock ns minus performance-counter ns, read together with ``entries``.
    offset: int
    handlers: Sequence[Handler]
    by_name: Mapping[str, Handler]
    host: str
    sample: float
    slow_ns: int | None
    #: How a record's arguments are joined: a JSON document, or one line of ``max_text``.
    as_json: bool = False
    max_text: int = 200
    pid: int = field(default_factory=os.getpid)
    _columns: EntryColumns | None = None

    @property
    def columns(self) -> EntryColumns:
        if self._columns is None:
            self._columns = EntryColumns(self.entries)
        return self._columns

    def handler(self, name: str) -> Handler | None:
        """The handler ``name`` means, or None; ValueError when it is ambiguous."""
        found = find_handler(name, self.by_name)
        return None if found is None else self.by_name[found]

    # ------------------------------------------------------------ records

    def record(self, entry: Entry) -> CallRecord:
        hid, start, elapsed, tid, detail = entry
        handler = self.handlers[hid]
        error_type = error_message = tb = args = result = None
        if detail is not None:
            error_type, error_message, tb, texts, result = detail
            if texts is not None:
                args = args_document(texts) if self.as_json else args_line(texts, self.max_text)
        return CallRecord(
            handler=handler.name,
            qualname=handler.qualname,
            host=self.host,
            pid=self.pid,
            thread_id=tid,
            started_ns=start + self.offset,
            elapsed_ns=elapsed,
            error_type=error_type,
            error_message=error_message,
            traceback=tb,
            args=args,
            result=result,
        )

    def records(self, entries: Iterable[Entry]) -> list[CallRecord]:
        return [self.record(e) for e in entries]

    def at(self, index: Index) -> list[CallRecord]:
        """The records of the entries at ``index``, in that order."""
        return self.records(self.entries[i] for i in index.tolist())

    def entries_at(self, index: Index, *, context: bool) -> list[CallEntry]:
        """The calls at ``index`` as smartswitch-style entries, in that order."""
        out = []
        for i in index.tolist():
            entry = self.entries[i]
            detail = entry[4]
            out.append(
                CallEntry(
                    self.record(entry),
                    switcher=self.handlers[entry[0]].switcher,
                    texts=None if detail is None else detail[3],
                    as_json=self.as_json,
                    context=context,
                )
            )
        return out

    # ------------------------------------------------------------ selecting

    def select(
        self,
        *,
        handler: str | None = None,
        errors: bool | None = None,
        since: float | None = None,
    ) -> Index:
        """Indices of the entries that pass the filters, oldest first."""
        columns = self.columns
        mask = np.ones(len(self.entries), dtype=np.bool_)
        if handler is not None:
            known = self.handler(handler)
            mask &= columns.hid == (known.hid if known is not None else -1)
        if errors is not None:
            mask &= columns.error if errors else ~columns.error
        if since is not None:
            mask &= columns.start >= int(since * NS_PER_S) - self.offset
        return np.flatnonzero(mask)

    def query(
        self,
        *,
        handler: str | None = None,
        errors: bool | None = None,
        since: float | None = None,
        slower_than: float | None = None,
        slowest: int | None = None,
        fastest: int | None = None,
        first: int | None = None,
        last: int | None = None,
    ) -> Index:
        """Indices of the calls that pass the filters (``handler``, ``errors``,
        ``since``, ``slower_than`` in seconds), oldest first; or the ``slowest``
        or ``fastest`` n of them, slowest or fastest first; then the ``first`` or
        ``last`` n."""
        if last is not None and first is not None:
            raise ValueError("give first or last, not both")
        if slowest is not None and fastest is not None:
            raise ValueError("give slowest or fastest, not both")
        if handler is None and errors is None and since is None:
            index: Index = np.arange(len(self.entries), dtype=np.intp)
        else:
            index = self.select(handler=handler, errors=errors, since=since)
        if slower_than is not None:
            index = index[self.columns.elapsed_ns[index] >= int(slower_than * NS_PER_S)]
        ranked = slowest if slowest is not None else fastest
        if ranked is not None:
            elapsed = self.columns.elapsed_ns[index]
            # A stable sort keeps calls of equal time in call order.
            order = np.argsort(-elapsed if slowest is not None else elapsed, kind="stable")
            index = index[order[: max(ranked, 0)]]
        if first is not None:
            index = index[: max(first, 0)]
        if last is not None:
            index = index[len(index) - max(last, 0) :]
        return index

    # ------------------------------------------------------------ statistics

    def stats(self, handlers: Iterable[Handler]) -> dict[str, CallStats]:
        """Statistics of ``handlers``, by name."""
        columns = self.columns
        groups = group(columns.hid, columns.elapsed_ns, columns.error, slow_ns=self.slow_ns)
        rows = {k: i for i, k in enumerate(groups.keys.tolist())}
        out: dict[str, CallStats] = {}
        for h in handlers:
            row = rows.get(h.hid, -1)
            last = None
            if row >= 0:
                entry = self.entries[int(groups.last[row])]
                detail = entry[4]
                last = (entry[1] + self.offset, entry[2], None if detail is None else detail[0])
            out[h.name] = stats_row(
                groups, row, handler=h.name, totals=h.totals(), last=last, sample=self.sample
            )
        return out

    def empty_stats(self, name: str) -> CallStats:
        """The statistics of a handler that has no call."""
        groups = group(*(np.zeros(0, dtype=np.int64),) * 2, np.zeros(0, dtype=np.bool_))
        return stats_row(groups, -1, handler=name, totals=(0, 0, 0), last=None, sample=self.sample)
