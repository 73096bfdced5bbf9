"""Host samples in and out of the wide tables and chunks.

Writing turns :class:`~collectbus.records.HostSample` records into one tuple
per wide-table row and bulk-inserts them: ``executemany`` on SQLite, ``COPY``
on PostgreSQL (psycopg 3). DESIGN.md measured ``executemany`` into PostgreSQL
at 54–80k rows/s against 1.5–2.4M for ``COPY``.

Reading returns plain NumPy columns (no pandas here): the recent rows of a
wide table merged with its decoded chunks. Columns that the schema allows to
be NULL come back as ``numpy.ma.MaskedArray``, every other one as a plain
array: int64 for counters, float64 for load averages, objects (str) for the
host and device names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Row, select

from collectbus.errors import StoreError
from collectbus.procfields import MEMINFO_COLUMNS, VMSTAT_COLUMNS
from collectbus.records import HostSample
from collectbus.store.chunks import ChunkFormatError, decode_chunk
from collectbus.store.dberrors import DriverError, RefusedError
from collectbus.store.quarantine import Refused
from collectbus.store.schema import HOUR_NS, WideTable, host_chunks, hosts

Columns = dict[str, npt.NDArray[Any]]
RowTuple = tuple[object, ...]


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
    if not rows:
        return
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in ("host_id", "time_ns", *wide.columns))
    if copy:
        import psycopg

        driver = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
        sql = f"COPY {wide.name} ({names}) FROM STDIN"
        try:
            with driver.cursor() as cursor, cursor.copy(sql) as cp:
                for row in rows:
                    cp.write_row(row)
        except psycopg.Error as err:
            raise DriverError(err) from err
        return
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    markers = ", ".join([marker] * (2 + len(wide.columns)))
    conn.exec_driver_sql(f"INSERT INTO {wide.name} ({names}) VALUES ({markers})", list(rows))


# ------------------------------------------------------------------- reading


def empty_columns(wide: WideTable) -> Columns:
    """Zero-length columns of the right types, without ``host``."""
    dtypes = {"int": np.int64, "float": np.float64, "text": object}
    out: Columns = {"time_ns": np.zeros(0, dtype=np.int64)}
    for name, kind in zip(wide.columns, wide.kinds, strict=True):
        array = np.zeros(0, dtype=dtypes[kind])
        out[name] = (
            np.ma.MaskedArray(array, mask=np.zeros(0, bool)) if name in wide.nullable else array
        )
    return out


def rows_to_columns(wide: WideTable, rows: Sequence[Row[Any]] | Sequence[RowTuple]) -> Columns:
    """Columns from ``(time_ns, *wide.columns)`` rows."""
    if not rows:
        return empty_columns(wide)
    values = list(zip(*rows, strict=True))
    out: Columns = {"time_ns": np.array(values[0], dtype=np.int64)}
    dtypes = {"int": np.int64, "float": np.float64, "text": object}
    for name, kind, column in zip(wide.columns, wide.kinds, values[1:], strict=True):
        dtype = dtypes[kind]
        if name not in wide.nullable:
            out[name] = np.array(column, dtype=dtype)
            continue
        mask = np.fromiter((v is None for v in column), dtype=bool, count=len(column))
        fill = "" if kind == "text" else 0
        data = np.array([fill if v is None else v for v in column], dtype=dtype)
        out[name] = np.ma.MaskedArray(data, mask=mask)
    return out


def conform(wide: WideTable, decoded: Columns) -> Columns:
    """Chunk columns in the table's current layout (a later column is all NULL)."""
    n = len(decoded["time_ns"])
    template = empty_columns(wide)
    out: Columns = {"time_ns": np.asarray(decoded["time_ns"], dtype=np.int64)}
    for name in wide.columns:
        column = decoded.get(name)
        if column is None:
            if name not in wide.nullable:
                raise StoreError(f"a {wide.name} chunk lacks the NOT NULL column {name!r}")
            dtype = template[name].dtype
            data = np.full(n, "", dtype=object) if dtype.kind == "O" else np.zeros(n, dtype=dtype)
            out[name] = np.ma.MaskedArray(data, mask=np.ones(n, bool))
        elif name in wide.nullable:
            out[name] = np.ma.MaskedArray(np.ma.getdata(column), mask=np.ma.getmaskarray(column))
        else:
            out[name] = np.ma.getdata(column)
    return out


def concat(wide: WideTable, parts: Sequence[Columns]) -> Columns:
    """Join column sets end to end, keeping the NULL masks."""
    if not parts:
        return empty_columns(wide)
    if len(parts) == 1:
        return parts[0]
    out: Columns = {}
    for name in parts[0]:
        data = np.concatenate([np.ma.getdata(p[name]) for p in parts])
        if name in wide.nullable:
            mask = np.concatenate([np.ma.getmaskarray(p[name]) for p in parts])
            out[name] = np.ma.MaskedArray(data, mask=mask)
        else:
            out[name] = data
    return out


def take(columns: Columns, index: npt.NDArray[Any]) -> Columns:
    """The rows at ``index`` (an integer or boolean array) of every column."""
    return {name: column[index] for name, column in columns.items()}


def sort_key(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """An array that sorts like ``values`` (text becomes its rank)."""
    if values.dtype == object:
        return np.unique(values, return_inverse=True)[1].reshape(-1)
    return values


def read_host(
    conn: Connection,
    wide: WideTable,
    *,
    host: str | None,
    since_ns: int | None,
    until_ns: int | None,
) -> Columns:
    """Rows with ``since_ns <= time_ns < until_ns``, recent and compacted,
    sorted by host, device and time; ``host`` is the first column."""
    names = dict(conn.execute(select(hosts.c.id, hosts.c.name)).all())
    host_id = next((i for i, n in names.items() if n == host), None)
    parts: list[Columns] = []
    ids: list[npt.NDArray[np.int64]] = []
    if host is None or host_id is not None:
        t = wide.table
        query = select(t.c.host_id, t.c.time_ns, *(t.c[c] for c in wide.columns))
        chunk_query = select(host_chunks.c.host_id, host_chunks.c.encoding, host_chunks.c.payload)
        chunk_query = chunk_query.where(host_chunks.c.source == wide.name)
        if host_id is not None:
            query = query.where(t.c.host_id == host_id)
            chunk_query = chunk_query.where(host_chunks.c.host_id == host_id)
        if since_ns is not None:
            query = query.where(t.c.time_ns >= since_ns)
            # A chunk holds one hour: the bound on hour_start_ns lets the
            # (host_id, source, hour_start_ns) index skip the hours before.
            chunk_query = chunk_query.where(
                host_chunks.c.hour_start_ns > since_ns - HOUR_NS,
                host_chunks.c.last_ns >= since_ns,
            )
        if until_ns is not None:
            query = query.where(t.c.time_ns < until_ns)
            chunk_query = chunk_query.where(
                host_chunks.c.hour_start_ns < until_ns, host_chunks.c.first_ns < until_ns
            )
        rows = conn.execute(query).all()
        if rows:
            parts.append(rows_to_columns(wide, [r[1:] for r in rows]))
            ids.append(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
        for chunk_host, encoding, payload in conn.execute(chunk_query):
            try:
                part = conform(wide, decode_chunk(payload, encoding))
            except ChunkFormatError as err:
                raise StoreError(f"a {wide.name} chunk of host id {chunk_host}: {err}") from err
            time_ns = part["time_ns"]
            keep = np.ones(len(time_ns), dtype=bool)
            if since_ns is not None:
                keep &= time_ns >= since_ns
            if until_ns is not None:
                keep &= time_ns < until_ns
            parts.append(take(part, keep) if not keep.all() else part)
            ids.append(np.full(int(keep.sum()), chunk_host, dtype=np.int64))
    columns = concat(wide, parts)
    host_ids = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
    host_names = np.array([names[i] for i in host_ids.tolist()], dtype=object)
    keys = [columns["time_ns"]]
    if wide.key is not None:
        keys.append(sort_key(np.ma.getdata(columns[wide.key])))
    keys.append(sort_key(host_names))
    order = np.lexsort(keys)
    return {"host": host_names[order], **take(columns, order)}
