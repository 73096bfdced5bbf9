"""Stored host samples as pandas DataFrames.

:func:`samples` is one wide table (recent rows and decompressed chunks
merged by the store) with one column per field; NULLs become pandas missing
values (nullable ``Int64``), so counters stay exact integers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from collectbus.store import Store


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
