"""A recorded call in the form smartswitch's call history gives it.

smartswitch's history entries are dicts: ``entry["elapsed"]``,
``entry["args"]``, ``entry["exception"]["message"]``. A :class:`CallEntry`
reads the same, and carries the :class:`~collectbus.records.CallRecord` it
was made from, whose fields stay readable as attributes
(``entry.elapsed_ns``, ``entry.error_type``, ``entry.record``)::

    {
        "handler": "api.save_user",     # the recorded name, <switcher>.<handler>
        "switcher": "api",              # None for a handler no Switcher dispatched
        "timestamp": 1699876543.123,    # start, Unix time in seconds
        "elapsed": 0.0234,              # seconds
        "started_ns": ..., "elapsed_ns": ...,
        "args": ..., "kwargs": {...},   # when captured; see below
        "result": ...,                  # when the call returned, and captured
        "exception": {"type": ..., "message": ..., "traceback": ...},   # when it failed
        "context": {"host": ..., "pid": ..., "thread_id": ..., "qualname": ...},
    }

``args``, ``kwargs`` and ``result`` are what the collector captured, never
the live objects: with ``serialize=`` the JSON values (a list, a dict, a
value), with ``capture="repr"`` or ``"summary"`` text (``args`` the record's
one line, ``kwargs`` the text of each keyword argument). ``context`` is there
when the plugin was given ``include_context=True``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from collectbus.calls.capture import MORE, ArgTexts
from collectbus.clock import NS_PER_S
from collectbus.records import CallRecord


class CallEntry(Mapping[str, Any]):
    """One call, as a read-only mapping in smartswitch's keys; attributes are
    the record's (see the module documentation)."""

    __slots__ = ("_items", "kwargs", "record", "switcher")

    def __init__(
        self,
        record: CallRecord,
        *,
        switcher: str | None,
        texts: ArgTexts | None,
        as_json: bool,
        context: bool,
    ) -> None:
        self.record = record
        self.switcher = switcher
        items: dict[str, Any] = {
            "handler": record.handler,
            "switcher": switcher,
            "timestamp": record.started_ns / NS_PER_S,
            "elapsed": record.elapsed_ns / NS_PER_S,
            "started_ns": record.started_ns,
            "elapsed_ns": record.elapsed_ns,
        }
        self.kwargs: dict[str, Any] | None = None
        if texts is not None:
            positional, named = texts
            if as_json:
                items["args"] = [_loads(t) for t in positional]
                self.kwargs = {k: _loads(v) for k, v in named}
            else:
                items["args"] = record.args
                self.kwargs = dict(named)
            items["kwargs"] = self.kwargs
        if record.ok:
            if record.result is not None:
                items["result"] = _loads(record.result) if as_json else record.result
        else:
            items["exception"] = self.exception
        if context:
            items["context"] = {
                "host": record.host,
                "pid": record.pid,
                "thread_id": record.thread_id,
                "qualname": record.qualname,
            }
        self._items = items

    @property
    def timestamp(self) -> float:
        """When the call started, Unix time in seconds."""
        return self.record.started_ns / NS_PER_S

    @property
    def elapsed(self) -> float:
        """How long the call took, in seconds."""
        return self.record.elapsed_ns / NS_PER_S

    @property
    def exception(self) -> dict[str, str | None] | None:
        """type, message and traceback of a failed call; None for one that returned."""
        r = self.record
        if r.ok:
            return None
        return {"type": r.error_type, "message": r.error_message, "traceback": r.traceback}

    def __getattr__(self, name: str) -> Any:
        # Only called for names not found above: the record's fields.
        if name in CallEntry.__slots__:
            raise AttributeError(name)
        return getattr(self.record, name)

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"CallEntry({self._items!r})"


def _loads(text: str) -> Any:
    # MORE stands in for arguments left out past the limit.
    return MORE if text == MORE else json.loads(text)
