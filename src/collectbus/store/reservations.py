"""The ``reservations`` and ``reservation_history`` tables: the reservation
tracker's rows written, and what is stored read back.

As for jobs (:mod:`collectbus.store.jobtables`), the tracker
(:mod:`collectbus.jobtrack.reservations`) decides what a collection changes
and the store writes what it is given, a :class:`ReservationRows`, in the
collection's transaction. :class:`ReservationTables` (``Store.reservations``)
reads what the store holds of a cluster for the tracker, and
:func:`read_reservations` and :func:`read_reservation_history` read them
back for ``collectbus reservations``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from collectbus.records import FINAL_RESERVATION_STATES
from collectbus.store.bulk import RowTuple, bulk_insert
from collectbus.store.schema import reservation_history, reservations

#: The ``reservations`` columns, in table order: the key first, ``raw_json`` last.
RESERVATION_COLUMNS = tuple(c.name for c in reservations.columns)
#: The ``reservation_history`` columns a row gives (``id`` is the database's).
RESERVATION_HISTORY_COLUMNS = tuple(c.name for c in reservation_history.columns if c.name != "id")
#: Fields whose every change is a ``reservation_history`` row, in this order.
RESERVATION_TRACKED = ("state", "start_ns", "end_ns", "nodes", "queue", "users")
#: The columns readers return unless asked for the raw payload too.
RESERVATION_FIELDS = tuple(c for c in RESERVATION_COLUMNS if c != "raw_json")
_KEY = ("cluster", "resv_id", "created_ns")
_UPDATED = tuple(c for c in RESERVATION_COLUMNS if c not in _KEY)

Transaction = Callable[[str], AbstractContextManager[Connection]]


@dataclass
class ReservationRows:
    """The rows one collection of reservations writes.

    Built by the reservation tracker; :attr:`stored` is set once the
    collection's transaction committed with them.
    """

    #: How many reservation records these rows stand for.
    records: int = 0
    #: New and changed ``reservations`` rows, in :data:`RESERVATION_COLUMNS` order.
    inserts: list[RowTuple] = field(default_factory=list)
    updates: list[RowTuple] = field(default_factory=list)
    #: ``reservation_history`` rows, in :data:`RESERVATION_HISTORY_COLUMNS` order.
    history: list[RowTuple] = field(default_factory=list)
    stored: bool = False


def write_reservation_rows(conn: Connection, rows: ReservationRows, *, copy: bool) -> None:
    """Write ``rows`` on ``conn``."""
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    bulk_insert(conn, "reservations", RESERVATION_COLUMNS, rows.inserts, copy=copy)
    if rows.updates:
        sets = ", ".join(f"{quote(c)} = {mark}" for c in _UPDATED)
        where = " AND ".join(f"{c} = {mark}" for c in _KEY)
        n = len(_KEY)
        conn.exec_driver_sql(
            f"UPDATE reservations SET {sets} WHERE {where}",
            [(*row[n:], *row[:n]) for row in rows.updates],
        )
    bulk_insert(conn, "reservation_history", RESERVATION_HISTORY_COLUMNS, rows.history, copy=copy)


class ReservationTables:
    """``Store.reservations``: read snapshots of the reservation tables."""

    def __init__(self, reader: Transaction) -> None:
        self._reader = reader

    def reading(self, action: str = "read reservations") -> AbstractContextManager[Connection]:
        """A read snapshot for :func:`read_reservations` and :func:`read_reservation_history`."""
        return self._reader(action)

    def current(self, cluster: str, *, ended_since_ns: int | None) -> list[RowTuple]:
        """The stored rows of ``cluster`` (in :data:`RESERVATION_COLUMNS` order)
        not in a final state, or last seen at or after ``ended_since_ns``."""
        c = reservations.c
        query = select(*(c[name] for name in RESERVATION_COLUMNS)).where(c.cluster == cluster)
        if ended_since_ns is not None:
            query = query.where(
                c.state.not_in(sorted(FINAL_RESERVATION_STATES))
                | (c.last_seen_ns >= ended_since_ns)
            )
        with self._reader("read reservations") as conn:
            return [tuple(row) for row in conn.execute(query)]


def read_reservations(
    conn: Connection,
    *,
    cluster: str | None = None,
    state: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    limit: int | None = None,
    raw: bool = False,
) -> list[dict[str, object]]:
    """Reservations that existed in the window (first seen before its end, last
    seen at or after its start), by start time; the newest ``limit`` if given."""
    c = reservations.c
    columns = [c[name] for name in RESERVATION_FIELDS] + ([c.raw_json] if raw else [])
    query = select(*columns)
    if cluster is not None:
        query = query.where(c.cluster == cluster)
    if state is not None:
        query = query.where(c.state == state)
    if since_ns is not None:
        query = query.where(c.last_seen_ns >= since_ns)
    if until_ns is not None:
        query = query.where(c.first_seen_ns < until_ns)
    order = (c.start_ns, c.first_seen_ns, c.cluster, c.resv_id)
    if limit is not None:
        query = query.order_by(*(o.desc() for o in order)).limit(limit)
        rows = [dict(r._mapping) for r in conn.execute(query)]
        rows.reverse()
        return rows
    return [dict(r._mapping) for r in conn.execute(query.order_by(*order))]


def read_reservation_history(
    conn: Connection,
    *,
    cluster: str | None = None,
    resv_id: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> list[dict[str, object]]:
    """``reservation_history`` rows observed in the window, oldest first."""
    h = reservation_history.c
    query = select(*(h[name] for name in RESERVATION_HISTORY_COLUMNS))
    if cluster is not None:
        query = query.where(h.cluster == cluster)
    if resv_id is not None:
        query = query.where(h.resv_id == resv_id)
    if since_ns is not None:
        query = query.where(h.observed_ns >= since_ns)
    if until_ns is not None:
        query = query.where(h.observed_ns < until_ns)
    query = query.order_by(h.observed_ns, h.id)
    return [dict(r._mapping) for r in conn.execute(query)]
