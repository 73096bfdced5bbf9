"""Host samples in and out of the wide tables and chunks.

Writing turns :class:`~collectbus.records.HostSample` records into one tuple
per wide-table row and bulk-inserts them (:func:`collectbus.store.bulk.bulk_insert`:
``executemany`` on SQLite, ``COPY`` on PostgreSQL).

Reading: :func:`host_queries` are the queries of both readers,
:mod:`collectbus.store.hostrows` (Python tuples, NumPy only to decode a
chunk) and :mod:`collectbus.store.hostcolumns` (NumPy columns, for pandas and
compaction).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from sqlalchemy import Connection

from collectbus.procfields import MEMINFO_COLUMNS, VMSTAT_COLUMNS
from collectbus.records import HostSample
from collectbus.store.bulk import RowTuple, bulk_insert
from collectbus.store.dberrors import RefusedError
from collectbus.store.quarantine import Refused
from collectbus.store.schema import HOUR_NS, WideTable, host_chunks, hosts


def sample_rows(
    samples: Iterable[HostSample],
    host_ids: Mapping[str, int],
    refused: list[Refused] | None = None,
) -> dict[str, list[RowTuple]]:
    """One list of ``(host_id, time_ns, *fields)`` tuples per wide table.

    A meminfo or vmstat tuple whose length is not the table's is left out and
    appended to ``refused``; without ``refused``, it is a :class:`RefusedError`.
    """
    cpu: list[RowTuple] = []
    stat: list[RowTuple] = []
    mem: list[RowTuple] = []
    vmstat: list[RowTuple] = []
    disk: list[RowTuple] = []
    net: list[RowTuple] = []
    load: list[RowTuple] = []
    psi: list[RowTuple] = []
    uptime: list[RowTuple] = []
    cgroup: list[RowTuple] = []
    for s in samples:
        head = (host_ids[s.host], s.time_ns)
        cpu.extend(head + row for row in s.cpu)
        if s.stat is not None:
            stat.append(head + s.stat)
        if s.mem is not None and _fits(s, "mem", s.mem, len(MEMINFO_COLUMNS), refused):
            mem.append(head + s.mem)
        if s.vmstat is not None and _fits(s, "vmstat", s.vmstat, len(VMSTAT_COLUMNS), refused):
            vmstat.append(head + s.vmstat)
        disk.extend(head + row for row in s.disk)
        net.extend(head + row for row in s.net)
        if s.load is not None:
            load.append(head + s.load)
        psi.extend(head + row for row in s.psi)
        if s.uptime is not None:
            uptime.append(head + s.uptime)
        if s.cgroup is not None:
            cgroup.append(head + s.cgroup)
    return {
        "host_cpu": cpu,
        "host_stat": stat,
        "host_mem": mem,
        "host_vmstat": vmstat,
        "host_disk": disk,
        "host_net": net,
        "host_load": load,
        "host_psi": psi,
        "host_uptime": uptime,
        "host_cgroup": cgroup,
    }


def _fits(
    sample: HostSample,
    name: str,
    values: tuple[object, ...],
    width: int,
    refused: list[Refused] | None,
) -> bool:
    if len(values) == width:
        return True
    reason = f"sample.{name} has {len(values)} values, host_{name} has {width} columns"
    if refused is None:
        raise RefusedError(
            f"host {sample.host!r}: {reason}",
            hint="the collector and the store disagree on the column layout (procfields.py)",
        )
    refused.append(Refused(f"host_{name}", None, values, reason, sample.host, sample.time_ns))
    return False


def insert_rows(conn: Connection, wide: WideTable, rows: Sequence[RowTuple], *, copy: bool) -> None:
    """Bulk-insert rows into one wide table, inside the caller's transaction."""
    bulk_insert(conn, wide.name, ("host_id", "time_ns", *wide.columns), rows, copy=copy)


# ------------------------------------------------------------------- reading


#: A statement in the driver's own parameter style, and its parameters.
Query = tuple[str, tuple[object, ...]]


class HostQueries(NamedTuple):
    """What reading one wide table sends: host names, the recent rows, the chunks.

    Plain SQL for the driver (:meth:`~sqlalchemy.engine.Connection.exec_driver_sql`):
    compiling the same statements with SQLAlchemy costs more than running them
    on a short window.
    """

    names: dict[int, str]
    #: ``(host_id, time_ns, *columns)`` of the recent rows; None when ``host`` is unknown.
    rows: Query | None
    #: ``(host_id, encoding, payload)`` of the chunks that may hold rows of the window.
    chunks: Query | None


def host_queries(
    conn: Connection,
    wide: WideTable,
    *,
    host: str | None,
    since_ns: int | None,
    until_ns: int | None,
) -> HostQueries:
    """The queries for rows with ``since_ns <= time_ns < until_ns`` (chunks are
    whole hours: their rows must still be cut to the window)."""
    names = {int(i): str(n) for i, n in conn.exec_driver_sql(f"SELECT id, name FROM {hosts.name}")}
    host_id = next((i for i, n in names.items() if n == host), None)
    if host is not None and host_id is None:
        return HostQueries(names, None, None)
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    quote = conn.dialect.identifier_preparer.quote
    rows_where: list[tuple[str, object]] = []
    chunks_where: list[tuple[str, object]] = [("source =", wide.name)]
    if host_id is not None:
        rows_where.append(("host_id =", host_id))
        chunks_where.append(("host_id =", host_id))
    if since_ns is not None:
        rows_where.append(("time_ns >=", since_ns))
        # A chunk holds one hour: the bound on hour_start_ns lets the
        # (host_id, source, hour_start_ns) index skip the hours before.
        chunks_where += [("hour_start_ns >", since_ns - HOUR_NS), ("last_ns >=", since_ns)]
    if until_ns is not None:
        rows_where.append(("time_ns <", until_ns))
        chunks_where += [("hour_start_ns <", until_ns), ("first_ns <", until_ns)]

    def query(columns: Sequence[str], table: str, where: list[tuple[str, object]]) -> Query:
        sql = f"SELECT {', '.join(quote(c) for c in columns)} FROM {table}"
        if where:
            sql += " WHERE " + " AND ".join(f"{condition} {mark}" for condition, _ in where)
        return sql, tuple(value for _, value in where)

    return HostQueries(
        names,
        query(("host_id", "time_ns", *wide.columns), wide.name, rows_where),
        query(("host_id", "encoding", "payload"), host_chunks.name, chunks_where),
    )
