"""Leaderboard rules that the recorded payloads do not exercise: PBS arrays, bad arguments."""

from __future__ import annotations

import pandas as pd
import pytest

from collectbus.analysis.top import core_hours, top

H = 3600 * 10**9


def _frame(*jobs: tuple[str, str | None, int, int | None, int | None]) -> pd.DataFrame:
    """Jobs (id, array parent, cpus, start hour, end hour) of user alice, submitted at 0."""
    return pd.DataFrame(
        {
            "cluster": "c",
            "job_id": [j[0] for j in jobs],
            "array_parent": [j[1] for j in jobs],
            "user": "alice",
            "cpus_requested": pd.array([j[2] for j in jobs], dtype="Int64"),
            "submit_ns": pd.array([0] * len(jobs), dtype="Int64"),
            "start_ns": pd.array([None if j[3] is None else j[3] * H for j in jobs], dtype="Int64"),
            "end_ns": pd.array([None if j[4] is None else j[4] * H for j in jobs], dtype="Int64"),
            "last_seen_ns": pd.array([10 * H] * len(jobs), dtype="Int64"),
            "wait_queued_s": pd.array(
                [None if j[3] is None else j[3] * 3600.0 for j in jobs], dtype="Float64"
            ),
        }
    )


def test_an_array_parent_is_left_out_when_its_subjobs_are_stored() -> None:
    # PBS lists the parent 7[] running as long as its subjobs: counting it too
    # would double the array's core-hours.
    frame = _frame(
        ("7[].s", None, 4, 1, 3), ("7[1].s", "7[].s", 4, 1, 2), ("7[2].s", "7[].s", 4, 2, 3)
    )
    row = top(frame, limit=None).iloc[0]
    assert (row["jobs"], row["core_hours"], row["started"]) == (2, 8.0, 2)


def test_an_array_parent_alone_is_counted() -> None:
    row = top(_frame(("7[].s", None, 4, 1, 3)), limit=None).iloc[0]
    assert (row["jobs"], row["core_hours"]) == (1, 8.0)


def test_a_job_with_no_end_runs_to_its_last_sighting_and_no_cpu_count_adds_nothing() -> None:
    frame = _frame(("1", None, 2, 4, None), ("2", None, None, 1, 2), ("3", None, 8, None, None))
    assert list(core_hours(frame)) == [12.0, 0.0, 0.0]  # 2 CPUs x (10 h - 4 h)
    assert list(core_hours(frame, since_ns=5 * H, until_ns=9 * H)) == [8.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": "queue"}, "cannot rank by 'queue'"),
        ({"metric": "gpu-hours"}, "no metric 'gpu-hours'"),
        ({"limit": 0}, "the limit is at least 1"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        top(_frame(("1", None, 1, 1, 2)), **kwargs)  # type: ignore[arg-type]
