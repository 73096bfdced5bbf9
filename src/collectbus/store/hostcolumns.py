"""Host samples read as NumPy columns, the recent rows merged with decoded chunks.

For pandas (:mod:`collectbus.analysis`) and compaction: the recent rows of a
wide table and its decoded chunks as plain NumPy columns. Columns that the
schema allows to be NULL come back as ``numpy.ma.MaskedArray``, every other
one as a plain array: int64 for counters, float64 for load averages, objects
(str) for the host and device names. :func:`collectbus.store.hostrows.read_host_rows`
reads the same rows as Python tuples, without NumPy, when no chunk is involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Row

from collectbus.errors import StoreError
from collectbus.store.bulk import RowTuple
from collectbus.store.chunks import ChunkFormatError, decode_chunk
from collectbus.store.hostlayout import WideLayout
from collectbus.store.hostqueries import host_queries

Columns = dict[str, npt.NDArray[Any]]


def empty_columns(wide: WideLayout) -> Columns:
    """Zero-length columns of the right types, without ``host``."""
    dtypes = {"int": np.int64, "float": np.float64, "text": object}
    out: Columns = {"time_ns": np.zeros(0, dtype=np.int64)}
    for name, kind in zip(wide.columns, wide.kinds, strict=True):
        array = np.zeros(0, dtype=dtypes[kind])
        out[name] = (
            np.ma.MaskedArray(array, mask=np.zeros(0, bool)) if name in wide.nullable else array
        )
    return out


def rows_to_columns(wide: WideLayout, rows: Sequence[Row[Any]] | Sequence[RowTuple]) -> Columns:
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


def conform(wide: WideLayout, decoded: Columns) -> Columns:
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


def concat(wide: WideLayout, parts: Sequence[Columns]) -> Columns:
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


def decoded_chunk(
    wide: WideLayout,
    chunk_host: int,
    encoding: int,
    payload: bytes,
    since_ns: int | None,
    until_ns: int | None,
) -> Columns:
    """One chunk's columns in the table's layout, cut to ``since_ns <= time_ns < until_ns``."""
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
    return take(part, keep) if not keep.all() else part


def chunk_rows(
    wide: WideLayout,
    chunk_host: int,
    encoding: int,
    payload: bytes,
    since_ns: int | None,
    until_ns: int | None,
) -> list[RowTuple]:
    """One chunk's rows in the window as ``(time_ns, *wide.columns)`` tuples; NULL is None."""
    columns = decoded_chunk(wide, chunk_host, encoding, payload, since_ns, until_ns)
    values: list[list[object]] = []
    for column in columns.values():
        data: list[object] = np.ma.getdata(column).tolist()
        if isinstance(column, np.ma.MaskedArray):
            mask = np.ma.getmaskarray(column).tolist()
            data = [None if masked else value for value, masked in zip(data, mask, strict=True)]
        values.append(data)
    return list(zip(*values, strict=True))


def read_host(
    conn: Connection,
    wide: WideLayout,
    *,
    host: str | None,
    since_ns: int | None,
    until_ns: int | None,
) -> Columns:
    """Rows with ``since_ns <= time_ns < until_ns``, recent and compacted,
    sorted by host, device and time; ``host`` is the first column."""
    queries = host_queries(
        conn, wide.name, wide.columns, host=host, since_ns=since_ns, until_ns=until_ns
    )
    names = queries.names
    parts: list[Columns] = []
    ids: list[npt.NDArray[np.int64]] = []
    if queries.rows is not None and queries.chunks is not None:
        rows = conn.exec_driver_sql(*queries.rows).all()
        if rows:
            parts.append(rows_to_columns(wide, [r[1:] for r in rows]))
            ids.append(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
        for chunk_host, encoding, payload in conn.exec_driver_sql(*queries.chunks):
            part = decoded_chunk(wide, chunk_host, encoding, payload, since_ns, until_ns)
            parts.append(part)
            ids.append(np.full(len(part["time_ns"]), chunk_host, dtype=np.int64))
    columns = concat(wide, parts)
    host_ids = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
    host_names = np.array([names[i] for i in host_ids.tolist()], dtype=object)
    keys = [columns["time_ns"]]
    if wide.key is not None:
        keys.append(sort_key(np.ma.getdata(columns[wide.key])))
    keys.append(sort_key(host_names))
    order = np.lexsort(keys)
    return {"host": host_names[order], **take(columns, order)}
