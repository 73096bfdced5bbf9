"""Stored host samples as pandas DataFrames.

:func:`samples` is one wide table (recent rows and decompressed chunks
merged by the store) with one column per field; NULLs become pandas missing
values (nullable ``Int64``), so counters stay exact integers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from collectbus.records import HostSample
from collectbus.store import Store
from collectbus.store.hostcolumns import rows_to_columns, sort_key, take
from collectbus.store.hostsamples import sample_rows
from collectbus.store.schema import WIDE_TABLES


def to_frame(columns: Mapping[str, npt.NDArray[Any]]) -> pd.DataFrame:
    """A DataFrame from the store's columns; masked columns become nullable."""
    data: dict[str, Any] = {}
    for name, column in columns.items():
        if not isinstance(column, np.ma.MaskedArray):
            data[name] = column
            continue
        values, mask = np.ma.getdata(column), np.ma.getmaskarray(column).copy()
        if values.dtype.kind in "iu":
            data[name] = pd.arrays.IntegerArray(values.astype(np.int64), mask)
        elif values.dtype.kind == "f":
            data[name] = pd.arrays.FloatingArray(values.astype(np.float64), mask)
        else:
            text = values.astype(object)
            text[mask] = None
            data[name] = text
    return pd.DataFrame(data)


def samples(
    store: Store,
    table: str,
    *,
    host: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> pd.DataFrame:
    """Rows of one host table (``host_cpu``, ``host_mem``, ...; ``cpu`` works too).

    Columns: ``host``, ``time_ns``, the device key if the table has one, then
    the fields; sorted by host, device and time; ``since_ns <= time_ns < until_ns``.
    """
    return to_frame(store.read_host(table, host=host, since_ns=since_ns, until_ns=until_ns))


def sample_frame(host_samples: Sequence[HostSample], table: str) -> pd.DataFrame:
    """One host table built from samples in memory, laid out as :func:`samples` reads it."""
    name = table if table.startswith("host_") else f"host_{table}"
    wide = WIDE_TABLES[name]
    names = sorted({s.host for s in host_samples})
    rows = sample_rows(host_samples, {h: i for i, h in enumerate(names)})[name]
    columns = rows_to_columns(wide, [row[1:] for row in rows])
    host_names = np.empty(len(rows), dtype=object)
    host_names[:] = [names[int(str(row[0]))] for row in rows]
    keys = [columns["time_ns"]]
    if wide.key is not None:
        keys.append(sort_key(np.ma.getdata(columns[wide.key])))
    keys.append(sort_key(host_names))
    order = np.lexsort(keys)
    return to_frame({"host": host_names[order], **take(columns, order)})
