"""What ``collectbus host --metric`` shows: a family of rates, optionally downsampled."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from collectbus.analysis import families
from collectbus.analysis.host import rates_from_tables

__all__ = ["FAMILIES", "downsample", "family"]

#: Family name: (what computes it, its device column or None, a description).
FAMILIES: dict[str, tuple[Callable[[families.Tables], pd.DataFrame], str | None, str]] = {
    "summary": (rates_from_tables, None, "CPU %, memory, disk and network bytes/s, load"),
    "cpu": (families.cpu, None, "% of CPU time per state, whole host"),
    "percpu": (lambda t: families.cpu(t, percpu=True), "cpu", "% of CPU time per state, per CPU"),
    "disk": (families.disk, "device", "iostat -x per disk"),
    "net": (families.net, "iface", "bytes, packets, errors, drops per s per interface"),
    "mem": (families.mem, None, "memory; swap in/out, page faults, OOM kills"),
    "psi": (families.psi, None, "pressure stall information"),
    "cgroup": (families.cgroup, "cgroup", "the container's own cgroup"),
    "uptime": (families.uptime, None, "uptime, boot time and the idle share"),
    "load": (
        lambda t: t("host_load")[["host", "time_ns", "load1", "load5", "load15"]],
        None,
        "load averages",
    ),
}

# Counts per step are summed over a bucket; every other figure is averaged.
_SUMMED = ("oom_kills",)


def family(tables: families.Tables, name: str) -> pd.DataFrame:
    """The frame of one family (see :data:`FAMILIES`); KeyError for an unknown name."""
    compute, _, _ = FAMILIES[name]
    return compute(tables)


def downsample(frame: pd.DataFrame, every_s: float, key: str | None) -> pd.DataFrame:
    """One row per host, device and bucket of ``every_s`` seconds: rates averaged.

    Buckets start at multiples of ``every_s`` since the epoch, and a row holds
    the bucket's start time. Steps without a rate (NaN) are left out of the
    means; a bucket without any rate holds NaN.
    """
    every_ns = int(every_s * 1e9)
    if frame.empty or every_ns <= 0:
        return frame
    keys = ["host", *([key] if key else []), "bucket"]
    frame = frame.assign(bucket=frame["time_ns"] // every_ns * every_ns)
    values = [c for c in frame.columns if c not in (*keys, "time_ns")]
    numeric = [c for c in values if pd.api.types.is_numeric_dtype(frame[c])]
    grouped = frame.groupby(keys, sort=True)[numeric]
    means = grouped.mean()
    for column in _SUMMED:
        if column in numeric:
            means[column] = grouped[column].sum(min_count=1)
    out = means.reset_index().rename(columns={"bucket": "time_ns"})
    ordered = ["host", "time_ns", *([key] if key else []), *numeric]
    return (
        out[ordered]
        .sort_values(["host", "time_ns", *([key] if key else [])])
        .reset_index(drop=True)
    )
