"""The data of the report's job charts: jobs queued per queue over time, and
the queued waits per queue.

Both come from the analyses of :mod:`collectbus.analysis.jobs`, so a chart
shows what ``collectbus analyze queue-depth`` (column ``queued``) and
``analyze wait-times --by queue`` (definition ``queued``) print for the same
window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from collectbus.analysis.jobs import jobs_frame, queue_depth
from collectbus.store import Store

#: Points of the queue-depth lines over the window.
DEPTH_POINTS = 240


@dataclass(frozen=True, slots=True)
class JobChartData:
    """Per queue: jobs queued at each of ``times_ns``, and the queued waits
    (start - submit, seconds, in order) of the jobs that started."""

    times_ns: list[int]
    queued: dict[str, list[int]]
    waits: dict[str, list[float]]

    @property
    def empty(self) -> bool:
        return not self.queued and not self.waits


def job_chart_data(
    store: Store,
    *,
    since_ns: int,
    until_ns: int,
    cluster: str | None = None,
    points: int = DEPTH_POINTS,
) -> JobChartData:
    """The jobs of the window (as every ``analyze`` command takes them), charted."""
    step = max(1, math.ceil((until_ns - since_ns) / max(points, 1)))
    times = list(range(since_ns, until_ns, step))
    depth = queue_depth(
        store, since_ns=since_ns, until_ns=until_ns, step_ns=step, cluster=cluster, by="queue"
    )
    queued = {
        str(queue): [int(v) for v in part.sort_values("time_ns")["queued"]]
        for queue, part in depth.groupby("queue", sort=True)
    }
    frame = jobs_frame(store, since_ns=since_ns, until_ns=until_ns, cluster=cluster)
    started = frame[frame["wait_queued_s"].notna()]
    waits = {
        str(queue): sorted(float(w) for w in part["wait_queued_s"])
        for queue, part in started.groupby(
            started["queue"].astype(object).fillna("(none)"), sort=True
        )
    }
    return JobChartData(times_ns=times, queued=queued, waits=waits)
