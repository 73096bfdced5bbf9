"""Leaderboards: users or projects ranked by core-hours, jobs or wait.

:func:`top` takes a frame of :func:`collectbus.analysis.jobs.jobs_frame` (the
jobs that existed in a window) and gives one row per user or project
(``project`` is the account: PBS ``Account_Name``, else its ``project``
attribute; Slurm's account), ranked by one of :data:`METRICS`. Every row has
every figure; the metric only chooses the order:

- ``jobs``: the jobs of the frame;
- ``core_hours``: CPUs requested × the time the job ran inside the window,
  in hours. A job runs from its start to its end, or, with no end recorded
  (still running, or gone from the listings), to the last time it was seen;
  a job that never started, or whose CPU count is not known, adds nothing;
- ``started``, ``mean_wait_s``, ``median_wait_s``: the queued wait (start -
  submit) of the jobs that started; a job that never ran has no wait.

A PBS array's parent (``123[]``) is left out when its subjobs are stored:
they are the work, and counting the parent too would count it twice.
Ties are broken by the name, so the order is the same on every run.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from collectbus.clock import NS_PER_S

#: ``--metric`` names and the column each ranks by (largest first).
METRICS = {"core-hours": "core_hours", "jobs": "jobs", "wait": "mean_wait_s"}
#: What a leaderboard can rank.
TOP_GROUPINGS = ("user", "project")
#: The columns of a leaderboard, after ``rank`` and the grouping.
TOP_COLUMNS = ("jobs", "core_hours", "started", "mean_wait_s", "median_wait_s")
DEFAULT_LIMIT = 10
_NS_PER_HOUR = 3600 * NS_PER_S


def core_hours(
    frame: pd.DataFrame, *, since_ns: int | None = None, until_ns: int | None = None
) -> pd.Series:
    """Per job of a jobs frame: CPUs × the hours it ran inside ``[since_ns, until_ns)``."""
    start = frame["start_ns"].astype("Int64")
    end = frame["end_ns"].astype("Int64").fillna(frame["last_seen_ns"].astype("Int64"))
    if since_ns is not None:
        start = start.clip(lower=since_ns)
    if until_ns is not None:
        end = end.clip(upper=until_ns)
    ran = (end - start).clip(lower=0)
    hours = ran.astype("Float64") / _NS_PER_HOUR * frame["cpus_requested"].astype("Float64")
    # A job that never started, or with no CPU count, adds nothing (not "unknown").
    return hours.fillna(0.0)


def _array_parents(frame: pd.DataFrame) -> pd.Series:
    """True for the rows that are the parent of an array whose subjobs are in the frame."""
    parents = frame[["cluster", "array_parent"]].dropna()
    keys = set(zip(parents["cluster"], parents["array_parent"], strict=True))
    return pd.Series(
        [(c, j) in keys for c, j in zip(frame["cluster"], frame["job_id"], strict=True)],
        index=frame.index,
        dtype=bool,
    )


def top(
    frame: pd.DataFrame,
    *,
    by: str = "user",
    metric: str = "core-hours",
    since_ns: int | None = None,
    until_ns: int | None = None,
    limit: int | None = DEFAULT_LIMIT,
) -> pd.DataFrame:
    """The ``limit`` users or projects with the most of ``metric`` (all with
    ``limit=None``): ``rank``, ``by``'s column, then :data:`TOP_COLUMNS`."""
    if by not in TOP_GROUPINGS:
        raise ValueError(f"cannot rank by {by!r}; one of {', '.join(TOP_GROUPINGS)}")
    if metric not in METRICS:
        raise ValueError(f"no metric {metric!r}; one of {', '.join(METRICS)}")
    if limit is not None and limit < 1:
        raise ValueError("the limit is at least 1")
    columns = ["rank", by, *TOP_COLUMNS]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    jobs = frame[~_array_parents(frame)]
    data = pd.DataFrame(
        {
            "group": jobs[by].astype(object).fillna("(none)"),
            "core_hours": core_hours(jobs, since_ns=since_ns, until_ns=until_ns),
            "wait": jobs["wait_queued_s"].astype("Float64"),
        }
    )
    rows: list[dict[str, object]] = []
    for group, part in data.groupby("group", sort=True):
        waits = part["wait"].dropna().to_numpy(dtype=np.float64)
        rows.append(
            {
                by: group,
                "jobs": len(part),
                "core_hours": float(part["core_hours"].sum()),
                "started": len(waits),
                "mean_wait_s": float(waits.mean()) if len(waits) else math.nan,
                "median_wait_s": float(np.median(waits)) if len(waits) else math.nan,
            }
        )
    out = pd.DataFrame(rows, columns=[by, *TOP_COLUMNS])
    key = METRICS[metric]
    # Largest first; a group with no wait at all ranks last by wait.
    out = out.sort_values(
        [key, by], ascending=[False, True], na_position="last", kind="stable"
    ).reset_index(drop=True)
    if limit is not None:
        out = out.head(limit)
    out.insert(0, "rank", range(1, len(out) + 1))
    return out
