"""Who wastes what: requested against used core-hours and memory, per job and
per user, account or queue (Slurm partition).

:func:`job_efficiency` is one row per started job that existed in the
window, with the figures of :mod:`.jobusage` over its whole run (a job is
counted whole, not clipped to the window: its CPU time is a counter since it
began): the samples of each of its exec hosts in its start-end window (end:
now while it runs), CPU time the largest ``cpu_seconds`` per host summed over
hosts, the memory peak the largest ``mem_peak_bytes`` or ``mem_bytes`` per
host summed. Then:

- ``core_hours_requested`` = cores x elapsed / 3600; ``core_hours_used`` =
  CPU time / 3600; ``efficiency`` = used / requested;
- ``wasted_core_hours`` = requested - used (none below zero);
- ``mem_over_request_bytes`` = memory requested - peak (none below zero).

A job without samples on its nodes, or without a core count, is not
*measured*: its figures are missing, and it counts only in ``jobs``.

:func:`efficiency` groups them: ``jobs``, ``measured``, the sums of the
core-hours, ``efficiency`` (sum used / sum requested), ``mem_efficiency``
(sum peak / sum requested, of the measured jobs with both),
``mem_over_request_bytes`` (mean per such job), ``wasted_core_hours``, and
with ``min_efficiency`` the ``below_min`` jobs; ranked by wasted core-hours.
"""

from __future__ import annotations

import math
import time

import pandas as pd

from collectbus.analysis.jobusage import host_matches
from collectbus.clock import NS_PER_S
from collectbus.store.jobusage import PER_JOB_HOST, read_usage_per_job_host
from collectbus.store.reader import StoreReader

__all__ = ["EFFICIENCY_COLUMNS", "GROUPINGS", "JOB_COLUMNS", "efficiency", "job_efficiency"]

#: ``--by``, and the job column each groups on (a Slurm partition is stored as the queue).
GROUPINGS = {"user": "user", "account": "account", "queue": "queue", "partition": "queue"}
JOB_COLUMNS = (
    "cluster",
    "job_id",
    "submit_ns",
    "user",
    "account",
    "queue",
    "state",
    "cores",
    "elapsed_s",
    "hosts_measured",
    "cpu_seconds",
    "core_hours_requested",
    "core_hours_used",
    "efficiency",
    "wasted_core_hours",
    "mem_requested_bytes",
    "mem_peak_bytes",
    "mem_over_request_bytes",
)
EFFICIENCY_COLUMNS = (
    "jobs",
    "measured",
    "core_hours_requested",
    "core_hours_used",
    "efficiency",
    "wasted_core_hours",
    "mem_efficiency",
    "mem_over_request_bytes",
)

_I = {name: i for i, name in enumerate(PER_JOB_HOST)}


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _larger(a: object, b: object) -> float | None:
    known = [v for v in (_num(a), _num(b)) if v is not None]
    return max(known) if known else None


def _job_row(
    key: tuple[object, ...], parts: list[tuple[object, ...]], now_ns: int
) -> dict[str, object]:
    first = parts[0]
    exec_hosts = [h for h in str(first[_I["exec_hosts"]] or "").split(",") if h]
    hosts = [
        p
        for p in parts
        if p[_I["host"]] is not None
        and (not exec_hosts or host_matches(str(p[_I["host"]]), exec_hosts))
    ]
    start = int(str(first[_I["start_ns"]]))
    end = first[_I["end_ns"]]
    elapsed = ((end if isinstance(end, int) else max(start, now_ns)) - start) / NS_PER_S
    cores = first[_I["cpus_requested"]]
    cores = cores if isinstance(cores, int) and cores > 0 else None
    cpus = [c for c in (_num(p[_I["cpu_seconds"]]) for p in hosts) if c is not None]
    peaks = [
        m
        for m in (_larger(p[_I["mem_peak_bytes"]], p[_I["mem_bytes"]]) for p in hosts)
        if m is not None
    ]
    cpu = sum(cpus) if cpus else None
    requested = cores * elapsed / 3600 if cores is not None else None
    used = cpu / 3600 if cpu is not None else None
    measured = requested is not None and used is not None
    mem_requested = first[_I["mem_requested_bytes"]]
    peak = sum(peaks) if peaks else None
    over = (
        max(0.0, mem_requested - peak)
        if isinstance(mem_requested, int) and peak is not None and measured
        else None
    )
    return {
        "cluster": key[0],
        "job_id": key[1],
        "submit_ns": key[2],
        "user": first[_I["username"]],
        "account": first[_I["account"]],
        "queue": first[_I["queue"]],
        "state": first[_I["state"]],
        "cores": cores,
        "elapsed_s": elapsed,
        "hosts_measured": len(cpus),
        "cpu_seconds": cpu,
        "core_hours_requested": requested if measured else None,
        "core_hours_used": used if measured else None,
        "efficiency": used / requested if measured and requested else None,  # type: ignore[operator]
        "wasted_core_hours": max(0.0, requested - used) if measured else None,  # type: ignore[operator]
        "mem_requested_bytes": mem_requested if isinstance(mem_requested, int) else None,
        "mem_peak_bytes": peak,
        "mem_over_request_bytes": over,
    }


def job_efficiency(
    store: StoreReader,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    cluster: str | None = None,
    now_ns: int | None = None,
) -> pd.DataFrame:
    """One row per started job of the window: :data:`JOB_COLUMNS` (see the module)."""
    now = time.time_ns() if now_ns is None else now_ns
    with store.reading("read jobs and their usage") as conn:
        rows = read_usage_per_job_host(
            conn, since_ns=since_ns, until_ns=until_ns, now_ns=now, cluster=cluster
        )
    by_job: dict[tuple[object, ...], list[tuple[object, ...]]] = {}
    for row in rows:
        by_job.setdefault(row[:3], []).append(row)
    out = [_job_row(key, parts, now) for key, parts in by_job.items()]
    frame = pd.DataFrame(out, columns=list(JOB_COLUMNS))
    for name in ("core_hours_requested", "core_hours_used", "efficiency", "wasted_core_hours",
                 "cpu_seconds", "mem_peak_bytes", "mem_over_request_bytes"):  # fmt: skip
        frame[name] = frame[name].astype("float64")
    return frame


def efficiency(
    jobs: pd.DataFrame, *, by: str = "user", min_efficiency: float | None = None
) -> pd.DataFrame:
    """Per ``by`` group (``user``, ``account``, ``queue`` or ``partition``) of a
    :func:`job_efficiency` frame: the group, then :data:`EFFICIENCY_COLUMNS`
    (and ``below_min`` with ``min_efficiency``), most wasted core-hours first."""
    if by not in GROUPINGS:
        raise ValueError(f"cannot group by {by!r}; one of {', '.join(GROUPINGS)}")
    if min_efficiency is not None and not (min_efficiency >= 0 and math.isfinite(min_efficiency)):
        raise ValueError(f"the minimum efficiency must be a fraction >= 0, not {min_efficiency}")
    columns = [by, *EFFICIENCY_COLUMNS] + (["below_min"] if min_efficiency is not None else [])
    if jobs.empty:
        return pd.DataFrame(columns=columns)
    data = jobs.copy()
    data["group"] = data[GROUPINGS[by]].astype(object).fillna("(none)")
    data["measured"] = data["core_hours_used"].notna()
    both = data["measured"] & data["mem_requested_bytes"].notna() & data["mem_peak_bytes"].notna()
    data["mem_req_both"] = data["mem_requested_bytes"].astype("float64").where(both)
    data["mem_peak_both"] = data["mem_peak_bytes"].where(both)
    data["below"] = data["efficiency"] < (min_efficiency if min_efficiency is not None else 0)
    grouped = data.groupby("group", sort=True)
    out = pd.DataFrame(
        {
            "jobs": grouped.size(),
            "measured": grouped["measured"].sum().astype("int64"),
            "core_hours_requested": grouped["core_hours_requested"].sum(),
            "core_hours_used": grouped["core_hours_used"].sum(),
            "wasted_core_hours": grouped["wasted_core_hours"].sum(),
            "mem_req": grouped["mem_req_both"].sum(),
            "mem_peak": grouped["mem_peak_both"].sum(),
            "mem_over_request_bytes": grouped["mem_over_request_bytes"].mean(),
            "below_min": grouped["below"].sum().astype("int64"),
        }
    )
    requested = out["core_hours_requested"]
    out["efficiency"] = (out["core_hours_used"] / requested).where(requested > 0)
    out["mem_efficiency"] = (out["mem_peak"] / out["mem_req"]).where(out["mem_req"] > 0)
    out = out.reset_index().rename(columns={"group": by})
    out = out.sort_values(["wasted_core_hours", by], ascending=[False, True], kind="stable")
    return out.reset_index(drop=True)[columns]
