"""Job analysis on stored jobs, checked against figures worked out by hand.

The jobs are real: five Slurm jobs from ``sacct --json`` and four PBS Pro jobs
from ``qstat -fx -F json`` on Aurora (tests/data/jobs), turned into records
by hand here. The expected figures were computed from the payloads' times by
hand; they are written out, with their arithmetic, next to each check.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from collectbus.analysis.jobs import (
    jobs_frame,
    node_states,
    queue_depth,
    runtime,
    wait_times,
    walltime_efficiency,
)
from collectbus.jobtrack.writer import TrackedStore
from collectbus.records import JobRecord, NodeRecord
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.testing.schedulers import make_pbs_job

S = 10**9
DATA = Path(__file__).parent.parent / "data" / "jobs"
SLURM_STATES = {"COMPLETED": "completed", "FAILED": "failed"}


@pytest.fixture
def store(migrated_store_url: str) -> Iterator[Store]:
    s = open_store(migrated_store_url)
    yield s
    s.close()


def _pbs_time(text: str) -> int:
    # Read as UTC: only differences matter here.
    when = dt.datetime.strptime(text, "%a %b %d %H:%M:%S %Y").replace(tzinfo=dt.UTC)
    return int(when.timestamp()) * S


def _hms(text: str) -> int:
    h, m, s = (int(x) for x in text.split(":"))
    return h * 3600 + m * 60 + s


def _slurm_records() -> list[JobRecord]:
    payload = json.loads((DATA / "sacct_slurm_22.05.8.json").read_text())
    out = []
    for job in payload["jobs"]:
        t = job["time"]
        out.append(
            JobRecord(
                cluster="linux",
                scheduler="slurm",
                job_id=str(job["job_id"]),
                submit_ns=t["submission"] * S,
                observed_ns=(t["end"] + 60) * S,
                state=SLURM_STATES[job["state"]["current"]],
                native_state=job["state"]["current"],
                name=job["name"],
                user=job["user"],
                account=job["account"],
                queue=job["partition"],
                nodes_requested=job["allocation_nodes"],
                eligible_ns=t["eligible"] * S,
                start_ns=t["start"] * S,
                end_ns=t["end"] * S,
                raw_json=json.dumps(job),
            )
        )
    return out


def _pbs_records() -> list[JobRecord]:
    payload = json.loads((DATA / "qstat_fx_aurora.json").read_text())
    out = []
    for job_id, job in payload["Jobs"].items():
        used = job.get("resources_used", {}).get("walltime")
        finished = job["job_state"] == "F"
        out.append(
            JobRecord(
                cluster="aurora",
                scheduler="pbs",
                job_id=job_id,
                submit_ns=_pbs_time(job["ctime"]),
                observed_ns=_pbs_time(job["mtime"]) + 60 * S,
                state=("timeout" if job["Exit_status"] == -29 else "completed")
                if finished
                else "held",
                native_state=job["job_state"],
                user=job["Job_Owner"].split("@")[0],
                account=job["Account_Name"],
                queue=job["queue"],
                nodes_requested=job["Resource_List"]["nodect"],
                cpus_requested=job["Resource_List"]["ncpus"],
                walltime_requested_seconds=_hms(job["Resource_List"]["walltime"]),
                walltime_used_seconds=_hms(used) if used else None,
                eligible_ns=_pbs_time(job["etime"]),
                eligible_seconds=_hms(job["eligible_time"]),
                start_ns=_pbs_time(job["stime"]) if "stime" in job else None,
                end_ns=_pbs_time(job["obittime"]) if "obittime" in job else None,
                exit_status=job.get("Exit_status"),
                raw_json=json.dumps(job),
            )
        )
    return out


@pytest.fixture
def frame(store: Store) -> pd.DataFrame:
    jobs = TrackedStore(store)
    jobs.apply(_slurm_records(), complete=False)
    jobs.apply(_pbs_records(), complete=False)
    return jobs_frame(store)


def _row(table: pd.DataFrame, **match: object) -> dict[str, object]:
    hit = table
    for key, value in match.items():
        hit = hit[hit[key] == value]
    assert len(hit) == 1, hit
    return dict(hit.iloc[0])


# Per job, by hand (seconds):
#   Slurm 7, 8:   submit 736, eligible 736, start 738, end 741 -> queued 2, eligible 2, runtime 3
#   Slurm 9:      submit 736, eligible 738, start 745, end 747 -> queued 9, eligible 7, runtime 2
#   Slurm 10, 11: submit 736, eligible 738, start 742, end 744 -> queued 6, eligible 4, runtime 2
#   PBS 6617175: ctime Jul 20 11:46:27, etime Jul 22 14:48:21, stime Jul 23 15:35:36,
#                obittime Jul 23 21:37:59: queued 3 d 3:49:09 = 272,949; eligible
#                1 d 0:47:15 = 89,235; eligible_time 24:46:00 = 89,160; runtime 6:02:23 = 21,743
#   PBS 6617182: ctime Jul 20 11:46:42, etime Jul 23 21:37:32, stime Jul 23 21:40:01,
#                obittime Jul 24 03:42:17: queued 3 d 9:53:19 = 294,799; eligible 2:29 = 149;
#                eligible_time 0; runtime 6:02:16 = 21,736
#   PBS 6631289: ctime Jul 20 15:16:49, etime Jul 23 21:27:27, stime Jul 23 21:30:39,
#                obittime Jul 23 21:33:27: queued 3 d 6:13:50 = 281,630; eligible 3:12 = 192;
#                eligible_time 0; runtime 2:48 = 168
#   PBS 4905472: held, never started: no wait, no runtime.


def test_wait_times_under_the_three_definitions(frame: pd.DataFrame) -> None:
    table = wait_times(frame, percentiles=(50, 90))
    assert list(table["definition"]) == ["queued", "eligible", "eligible_seconds"]
    queued = _row(table, definition="queued")
    # sorted: 2 2 6 6 9 272949 281630 294799; median (6 + 9) / 2; p90 at rank 6.3
    assert queued["jobs"] == 8
    assert queued["p50_s"] == pytest.approx(7.5)
    assert queued["p90_s"] == pytest.approx(281630 + 0.3 * (294799 - 281630))
    assert queued["mean_s"] == pytest.approx((2 + 2 + 9 + 6 + 6 + 272949 + 294799 + 281630) / 8)
    assert (queued["min_s"], queued["max_s"]) == (2, 294799)
    eligible = _row(table, definition="eligible")
    # sorted: 2 2 4 4 7 149 192 89235
    assert eligible["jobs"] == 8
    assert eligible["p50_s"] == pytest.approx(5.5)
    assert eligible["max_s"] == 89235
    accrued = _row(table, definition="eligible_seconds")
    # Only PBS has it, and only the three jobs that started: 89160 0 0.
    assert accrued["jobs"] == 3
    assert accrued["p50_s"] == 0
    assert accrued["mean_s"] == pytest.approx(89160 / 3)


def test_wait_times_by_project_and_size(frame: pd.DataFrame) -> None:
    by_project = wait_times(frame, by="project", percentiles=(50,))
    queued = by_project[by_project["definition"] == "queued"]
    assert _row(queued, group="TwinBlood")["p50_s"] == pytest.approx((272949 + 294799) / 2)
    assert _row(queued, group="CoreCollapseModel")["jobs"] == 1
    assert _row(queued, group="root")["p50_s"] == 6  # 2 2 6 6 9
    by_size = wait_times(frame, by="size", percentiles=(50,))
    sizes = set(by_size["group"])
    # 40 and 30 nodes, then 1 node; the held 10,000-node job never started.
    assert sizes == {"nodes 17-64", "nodes 1"}
    assert _row(by_size, definition="queued", group="nodes 17-64")["jobs"] == 3


def test_runtime_and_walltime_efficiency(frame: pd.DataFrame) -> None:
    table = runtime(frame, percentiles=(50,))
    row = _row(table, group="all")
    # sorted: 2 2 2 3 3 168 21736 21743
    assert (row["jobs"], row["p50_s"], row["max_s"]) == (8, 3, 21743)
    by_queue = runtime(frame, by="queue", percentiles=(50,))
    assert _row(by_queue, group="tiny")["p50_s"] == 21736  # 168 21736 21743
    eff = walltime_efficiency(frame, percentiles=(50,))
    row = _row(eff, group="all")
    # used / requested, 6 h requested: 6:01:24, 6:01:20, 0:01:50; Slurm had no limit.
    assert row["jobs"] == 3
    assert row["p50"] == pytest.approx(21680 / 21600)
    assert row["max"] == pytest.approx(21684 / 21600)
    assert row["min"] == pytest.approx(110 / 21600)


def test_queue_depth_and_node_states_follow_the_history(store: Store) -> None:
    t0 = 1_795_000_000 * S
    m = 60 * S

    def job(n: int, t: int, state: str, queue: str = "prod") -> JobRecord:
        start = t0 + m if n == 1 else t0 + 2 * m if state == "running" else None
        return make_pbs_job(
            n, submit_ns=t0 - m, observed_ns=t, state=state, queue=queue, start_ns=start
        )

    listings = [
        [job(1, t0, "queued"), job(2, t0, "queued"), job(3, t0, "held", "debug")],
        [job(1, t0 + m, "running"), job(2, t0 + m, "queued"), job(3, t0 + m, "held", "debug")],
        [
            job(1, t0 + 2 * m, "running"),
            job(2, t0 + 2 * m, "running"),
            job(3, t0 + 2 * m, "queued", "debug"),
        ],
        [job(2, t0 + 3 * m, "running"), job(3, t0 + 3 * m, "queued", "debug")],  # 1 gone
    ]
    jobs = TrackedStore(store)
    for listing in listings:
        jobs.apply(listing, complete=True)
    depth = queue_depth(store, since_ns=t0, until_ns=t0 + 4 * m, step_ns=m)
    got = {
        (int((r.time_ns - t0) // m), r.queue): (r.queued, r.held, r.running)
        for r in depth.itertuples()
    }
    assert got == {
        (0, "debug"): (0, 1, 0),
        (0, "prod"): (2, 0, 0),
        (1, "debug"): (0, 1, 0),
        (1, "prod"): (1, 0, 1),
        (2, "debug"): (1, 0, 0),
        (2, "prod"): (0, 0, 2),
        (3, "debug"): (1, 0, 0),
        (3, "prod"): (0, 0, 1),  # job 1 disappeared
    }
    overall = queue_depth(store, since_ns=t0, until_ns=t0 + 4 * m, step_ns=m, by=None)
    assert list(overall["queued"]) == [2, 1, 1, 1]

    def node(name: str, t: int, state: str) -> NodeRecord:
        return NodeRecord(
            cluster="aurora",
            scheduler="pbs",
            node=name,
            observed_ns=t,
            state=state,
            native_state=state,
        )

    jobs = TrackedStore(store)
    jobs.write([node("n1", t0, "idle"), node("n2", t0, "allocated")])
    jobs.write([node("n1", t0 + m, "allocated"), node("n2", t0 + m, "allocated")])
    jobs.write([node("n1", t0 + 2 * m, "down"), node("n2", t0 + 2 * m, "allocated")])
    states = node_states(store, since_ns=t0, until_ns=t0 + 3 * m, step_ns=m)
    assert states.to_dict("list") == {
        "time_ns": [t0, t0 + m, t0 + 2 * m],
        "allocated": [1, 2, 1],
        "down": [0, 0, 1],
        "idle": [1, 0, 0],
    }


def test_an_empty_store_gives_empty_frames(store: Store) -> None:
    frame = jobs_frame(store)
    assert frame.empty
    assert wait_times(frame).empty
    assert runtime(frame).empty
    assert queue_depth(store, since_ns=0, until_ns=10 * S, step_ns=S).empty
