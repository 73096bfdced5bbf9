"""Rates of a recording (a :class:`~collectbus.recording.TimeSeriesData`), as for stored samples.

The samples are written to a throw-away SQLite store and read back through
:func:`collectbus.analysis.host.rates`, so that a result file and the store
give the same CPU %, memory, disk and network figures, with the same rules
for wraps, reboots and re-created devices.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from collectbus.analysis.host import rates
from collectbus.recording.timeseries import TimeSeriesData
from collectbus.records import Record
from collectbus.store import open as open_store

__all__ = ["recording_rates"]


def recording_rates(data: TimeSeriesData, *, host: str | None = None) -> pd.DataFrame:
    """One row per host and sample: ``host``, ``time_ns`` and the rate columns."""
    good: list[Record] = [s for h in data.samples_by_host for s in data.good_samples(h)]
    with tempfile.TemporaryDirectory(prefix="collectbus-report-") as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'recording.db'}")
        try:
            store.write(good)
            return rates(store, host=host)
        finally:
            store.close()
