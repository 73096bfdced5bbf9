"""Batch jobs as pandas DataFrames: wait times, runtime, efficiency, queue depth, nodes.

:func:`jobs_frame` is one row per job (cluster, job_id, submit time) with the
stored fields and these derived columns (seconds as floats, missing when
the times they need are not known):

- ``wait_queued_s``: start - submit, the wait as a user sees it;
- ``wait_eligible_s``: start - eligible time (PBS ``etime``, Slurm
  ``eligible``), the wait once no hold, dependency or limit kept it back;
- ``wait_eligible_seconds_s``: PBS's own accrued ``eligible_time``, which
  stops while the job is held or ineligible (Slurm has no such figure), of
  jobs that started;
- ``runtime_s``: end - start, of jobs that have both;
- ``walltime_efficiency``: walltime used / walltime requested, of jobs that
  ended (used is the scheduler's ``walltime_used_seconds``, or else the
  runtime);
- ``user``, ``project`` (the account) and ``size``, the node-count bin
  (:data:`SIZE_BINS`; the CPU count when the node count is not known).

:func:`wait_times`, :func:`runtime` and :func:`walltime_efficiency` summarise
a jobs frame, overall or per ``user``, ``project``, ``queue``, ``size`` or
``cluster``: count, mean, min, max and the asked percentiles (NumPy's linear
interpolation). :func:`job_usage` (:mod:`.jobusage`) is what one job used on
its nodes. :func:`queue_depth` and :func:`node_states` count jobs per
state and nodes per state at regular times from the stored history.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from collectbus.analysis.jobusage import JobUsage as JobUsage
from collectbus.analysis.jobusage import job_usage as job_usage
from collectbus.clock import NS_PER_S
from collectbus.store import Store
from collectbus.store.jobquery import (
    JOB_FIELDS,
    read_history,
    read_jobs,
    read_node_snapshots,
    read_state_changes,
)
from collectbus.store.jobtables import HISTORY_COLUMNS
from collectbus.store.snapshots import NODE_KEYFRAME_NS

#: The three definitions of a job's wait, and the column each is in.
WAIT_DEFINITIONS = {
    "queued": "wait_queued_s",
    "eligible": "wait_eligible_s",
    "eligible_seconds": "wait_eligible_seconds_s",
}
WAIT_MEANINGS = {
    "queued": "start - submit",
    "eligible": "start - eligible time (PBS etime, Slurm eligible)",
    "eligible_seconds": "PBS's own accrued eligible_time",
}
#: Node-count bins (inclusive bounds) of the ``size`` grouping.
SIZE_BINS = ((1, 1), (2, 4), (5, 16), (17, 64), (65, 256), (257, None))
GROUPINGS = ("user", "project", "queue", "size", "cluster")
DEFAULT_PERCENTILES = (50.0, 90.0, 99.0)
#: The job states counted by :func:`queue_depth`.
DEPTH_STATES = ("queued", "held", "running")
_ENDED = frozenset({"completed", "failed", "cancelled", "timeout"})


def _size_label(nodes: object, cpus: object) -> str | None:
    for count, unit in ((nodes, "nodes"), (cpus, "cpus")):
        if count is None or pd.isna(count):  # type: ignore[call-overload]
            continue
        n = int(count)  # type: ignore[call-overload]
        for low, high in SIZE_BINS:
            if n >= low and (high is None or n <= high):
                return f"{unit} {low}" if low == high else f"{unit} {low}-{high or ''}".rstrip("-")
        return f"{unit} 0"
    return None


def _seconds(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (later.astype("Int64") - earlier.astype("Int64")).astype("Float64") / NS_PER_S


def jobs_frame(
    store: Store,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    cluster: str | None = None,
    user: str | None = None,
    queue: str | None = None,
    state: str | None = None,
) -> pd.DataFrame:
    """Jobs that existed in the window (submitted before its end, seen after
    its start), with the derived columns described above."""
    with store.jobs.reading() as conn:
        rows = read_jobs(
            conn,
            cluster=cluster,
            user=user,
            queue=queue,
            state=state,
            since_ns=since_ns,
            until_ns=until_ns,
        )
    frame = pd.DataFrame(rows, columns=list(JOB_FIELDS))
    for name in JOB_FIELDS:
        if name.endswith(("_ns", "_seconds", "_bytes", "_requested")) or name in (
            "priority",
            "exit_status",
            "exit_signal",
        ):
            frame[name] = frame[name].astype("Int64")
    frame = frame.rename(columns={"username": "user"})
    frame["project"] = frame["account"]
    frame["size"] = [
        _size_label(n, c)
        for n, c in zip(frame["nodes_requested"], frame["cpus_requested"], strict=True)
    ]
    frame["wait_queued_s"] = _seconds(frame["start_ns"], frame["submit_ns"])
    frame["wait_eligible_s"] = _seconds(frame["start_ns"], frame["eligible_ns"])
    # A job that has not started has only a partial accrual: not a wait yet.
    started = frame["start_ns"].notna()
    frame["wait_eligible_seconds_s"] = frame["eligible_seconds"].astype("Float64").where(started)
    frame["runtime_s"] = _seconds(frame["end_ns"], frame["start_ns"])
    used = frame["walltime_used_seconds"].astype("Float64").fillna(frame["runtime_s"])
    ended = frame["state"].isin(_ENDED)
    efficiency = used / frame["walltime_requested_seconds"].astype("Float64")
    frame["walltime_efficiency"] = efficiency.where(ended)
    return frame


def history_frame(
    store: Store,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    cluster: str | None = None,
    job_id: str | None = None,
    user: str | None = None,
) -> pd.DataFrame:
    """``job_history`` rows with their job's user, account and queue, oldest first."""
    with store.jobs.reading("read job_history") as conn:
        rows = read_history(
            conn, cluster=cluster, job_id=job_id, user=user, since_ns=since_ns, until_ns=until_ns
        )
    columns = [
        "id",
        *HISTORY_COLUMNS,
        "username",
        "account",
        "queue",
        "scheduler",
    ]
    return pd.DataFrame(rows, columns=columns).rename(columns={"username": "user"})


def _check_by(by: str | None) -> None:
    if by is not None and by not in GROUPINGS:
        raise ValueError(f"cannot group by {by!r}; one of {', '.join(GROUPINGS)}")


def summarise(
    values: pd.Series,
    groups: pd.Series | None,
    percentiles: Sequence[float],
    *,
    unit: str = "_s",
) -> pd.DataFrame:
    """Count, mean, min, max and percentiles of ``values`` (missing ones left
    out), overall or per group; one row per group, largest count first."""
    data = pd.DataFrame({"value": values.astype("Float64")})
    data["group"] = "all" if groups is None else groups.astype(object).fillna("(none)")
    data = data.dropna(subset=["value"])
    rows: list[dict[str, object]] = []
    for group, part in data.groupby("group", sort=True):
        v = part["value"].to_numpy(dtype=np.float64)
        row: dict[str, object] = {"group": group, "jobs": len(v), f"mean{unit}": float(v.mean())}
        row[f"min{unit}"] = float(v.min())
        for p in percentiles:
            row[f"p{p:g}{unit}"] = float(np.percentile(v, p))
        row[f"max{unit}"] = float(v.max())
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    return out.sort_values(["jobs", "group"], ascending=[False, True], kind="stable").reset_index(
        drop=True
    )


def wait_times(
    frame: pd.DataFrame,
    *,
    by: str | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
) -> pd.DataFrame:
    """Wait times under each of the three definitions, named in ``definition``."""
    _check_by(by)
    parts = []
    for definition, column in WAIT_DEFINITIONS.items():
        part = summarise(frame[column], frame[by] if by else None, percentiles)
        if part.empty:
            continue
        part.insert(1, "definition", definition)
        parts.append(part)
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True)


def runtime(
    frame: pd.DataFrame,
    *,
    by: str | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
) -> pd.DataFrame:
    """Runtime (end - start) of the jobs that have both."""
    _check_by(by)
    return summarise(frame["runtime_s"], frame[by] if by else None, percentiles)


def walltime_efficiency(
    frame: pd.DataFrame,
    *,
    by: str | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
) -> pd.DataFrame:
    """Walltime used / requested of the jobs that ended (1.0 = used all of it)."""
    _check_by(by)
    return summarise(frame["walltime_efficiency"], frame[by] if by else None, percentiles, unit="")


def _grid(since_ns: int, until_ns: int, step_ns: int) -> np.ndarray:
    if step_ns <= 0:
        raise ValueError("the step must be positive")
    return np.arange(since_ns, until_ns, step_ns, dtype=np.int64)


def _count(starts: np.ndarray, ends: np.ndarray, times: np.ndarray) -> np.ndarray:
    """How many intervals ``[start, end)`` hold each time."""
    started = np.searchsorted(np.sort(starts), times, side="right")
    ended = np.searchsorted(np.sort(ends), times, side="right")
    return started - ended


def _intervals(rows: pd.DataFrame, keys: list[str], end_of_last: np.ndarray) -> np.ndarray:
    """End of each row's interval: the next row of the same key, else ``end_of_last``."""
    # Integer all the way: nanoseconds since 1970 do not fit a float64 exactly.
    times = rows["observed_ns"].astype(np.int64)
    following = times.groupby([rows[k] for k in keys], sort=False).shift(-1, fill_value=-1)
    ends = following.to_numpy(dtype=np.int64).copy()
    last = ends == -1
    ends[last] = end_of_last[last]
    return ends


def queue_depth(
    store: Store,
    *,
    since_ns: int,
    until_ns: int,
    step_ns: int,
    cluster: str | None = None,
    by: str | None = "queue",
) -> pd.DataFrame:
    """Jobs queued, held and running at each step, from the ``job_history``
    state changes (so as exact as the collection interval); per queue (the
    job's current queue) or overall (``by=None``)."""
    if by not in (None, "queue", "user", "cluster"):
        raise ValueError("queue depth groups by queue, user or cluster")
    times = _grid(since_ns, until_ns, step_ns)
    with store.jobs.reading("read job_history") as conn:
        rows = pd.DataFrame(
            read_state_changes(conn, since_ns=since_ns, until_ns=until_ns, cluster=cluster),
            columns=[
                "cluster",
                "job_id",
                "submit_ns",
                "observed_ns",
                "new_value",
                "queue",
                "username",
            ],
        ).rename(columns={"username": "user"})
    column = by or "all"
    out = []
    if rows.empty:
        return pd.DataFrame(columns=["time_ns", column, *DEPTH_STATES])
    rows["all"] = "all"
    rows[column] = rows[column].astype(object).fillna("(none)")
    far = np.full(len(rows), np.iinfo(np.int64).max, dtype=np.int64)
    rows["end_ns"] = _intervals(rows, ["cluster", "job_id", "submit_ns"], far)
    for group, part in rows.groupby(column, sort=True):
        counts = {
            state: _count(
                part.loc[part["new_value"] == state, "observed_ns"].to_numpy(np.int64),
                part.loc[part["new_value"] == state, "end_ns"].to_numpy(np.int64),
                times,
            )
            for state in DEPTH_STATES
        }
        out.append(pd.DataFrame({"time_ns": times, column: group, **counts}))
    return pd.concat(out, ignore_index=True).sort_values(["time_ns", column], kind="stable")


def node_states(
    store: Store,
    *,
    since_ns: int,
    until_ns: int,
    step_ns: int,
    cluster: str | None = None,
) -> pd.DataFrame:
    """Nodes per state at each step, from ``node_snapshots``: a node is in the
    state of its newest row, for up to an hour (rows are written at least
    hourly while a node is listed). One column per state seen."""
    times = _grid(since_ns, until_ns, step_ns)
    with store.jobs.reading("read node_snapshots") as conn:
        rows = pd.DataFrame(
            read_node_snapshots(
                conn,
                since_ns=since_ns,
                until_ns=until_ns,
                cluster=cluster,
                lookback_ns=NODE_KEYFRAME_NS,
            ),
            columns=["cluster", "node", "observed_ns", "state", "native_state"],
        )
    if rows.empty:
        return pd.DataFrame(columns=["time_ns"])
    stale = rows["observed_ns"].to_numpy(np.int64) + NODE_KEYFRAME_NS
    rows["end_ns"] = _intervals(rows, ["cluster", "node"], stale)
    data: dict[str, np.ndarray] = {"time_ns": times}
    for state, part in rows.groupby("state", sort=True):
        data[str(state)] = _count(
            part["observed_ns"].to_numpy(np.int64), part["end_ns"].to_numpy(np.int64), times
        )
    return pd.DataFrame(data)
