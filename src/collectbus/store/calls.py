"""Recorded calls in and out of the ``calls`` table.

Writing turns :class:`~collectbus.records.CallRecord` records into row tuples
and bulk-inserts them (:mod:`collectbus.store.bulk`). Reading returns rows as
mappings, or, for statistics over many calls, plain NumPy columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select, select

from collectbus.records import CallRecord
from collectbus.store.bulk import RowTuple, bulk_insert
from collectbus.store.schema import calls

if TYPE_CHECKING:
    import numpy.typing as npt

COLUMNS = (
    "host",
    "pid",
    "thread_id",
    "handler",
    "qualname",
    "started_ns",
    "elapsed_ns",
    "error_type",
    "error_message",
    "traceback",
    "args",
    "result",
)
_SIGNED_64 = 2**63


def call_rows(records: Iterable[CallRecord]) -> list[RowTuple]:
    """One tuple per record, in :data:`COLUMNS` order."""
    return [
        (
            r.host,
            r.pid,
            # A thread identifier is an unsigned C value; a BIGINT is signed.
            r.thread_id - 2 * _SIGNED_64 if r.thread_id >= _SIGNED_64 else r.thread_id,
            r.handler,
            r.qualname,
            r.started_ns,
            r.elapsed_ns,
            r.error_type,
            r.error_message,
            r.traceback,
            r.args,
            r.result,
        )
        for r in records
    ]


def insert_calls(conn: Connection, rows: list[RowTuple], *, copy: bool) -> None:
    """Bulk-insert call rows inside the caller's transaction."""
    bulk_insert(conn, calls.name, COLUMNS, rows, copy=copy)


def _window(
    query: Select[Any],
    *,
    handler: str | None,
    since_ns: int | None,
    until_ns: int | None,
    errors: bool | None,
) -> Select[Any]:
    c = calls.c
    if handler is not None:
        query = query.where(c.handler == handler)
    if since_ns is not None:
        query = query.where(c.started_ns >= since_ns)
    if until_ns is not None:
        query = query.where(c.started_ns < until_ns)
    if errors is not None:
        query = query.where(c.error_type.is_not(None) if errors else c.error_type.is_(None))
    return query


def read_calls(
    conn: Connection,
    *,
    handler: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    errors: bool | None = None,
    slowest: int | None = None,
    limit: int | None = None,
) -> list[dict[str, object]]:
    """Calls in the window: the ``slowest`` n, slowest first; else the newest
    ``limit`` (default all), oldest first."""
    c = calls.c
    query = _window(
        select(calls), handler=handler, since_ns=since_ns, until_ns=until_ns, errors=errors
    )
    if slowest is not None:
        query = query.order_by(c.elapsed_ns.desc(), c.id).limit(slowest)
        return [dict(r) for r in conn.execute(query).mappings()]
    query = query.order_by(c.started_ns.desc(), c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [dict(r) for r in reversed(conn.execute(query).mappings().all())]


def read_call_timings(
    conn: Connection,
    *,
    handler: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> dict[str, npt.NDArray[Any]]:
    """Columns of the calls in the window, oldest first: ``handler`` and
    ``error_type`` (objects, None for a call that returned), ``started_ns`` and
    ``elapsed_ns``."""
    import numpy as np  # here: the rest of the store reads without NumPy

    c = calls.c
    query = _window(
        select(c.handler, c.started_ns, c.elapsed_ns, c.error_type),
        handler=handler,
        since_ns=since_ns,
        until_ns=until_ns,
        errors=None,
    ).order_by(c.started_ns, c.id)
    rows = conn.execute(query).all()
    n = len(rows)
    return {
        "handler": np.array([r[0] for r in rows], dtype=object),
        "started_ns": np.fromiter((r[1] for r in rows), np.int64, n),
        "elapsed_ns": np.fromiter((r[2] for r in rows), np.int64, n),
        "error_type": np.array([r[3] for r in rows], dtype=object),
    }
