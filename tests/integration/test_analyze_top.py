"""Leaderboards (``analyze top``) on recorded PBS and Slurm jobs, against a recomputation.

The jobs are the recorded ``qstat -x -f -F json`` payloads of tests/data/pbs
(Aurora: finished, timed-out, cancelled, held and queued jobs; MetaCentrum: a
running job) and ``sacct --json`` payloads of tests/data/slurm (arrays,
failures, timeouts, jobs cancelled while pending), read by the collectors'
own parsers and stored by the job tracker. The expected figures are
recomputed here from the ``jobs`` table with plain SQL and a Python loop.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import text

from collectbus.analysis.jobs import jobs_frame, wait_times
from collectbus.analysis.top import top
from collectbus.collectors.pbs.parse import parse_qstat_jobs
from collectbus.collectors.slurm.parse import parse_sacct_json
from collectbus.jobtrack.writer import TrackedStore
from collectbus.records import JobRecord
from collectbus.store import Store
from collectbus.store import open as open_store
from tests.integration.cli_helpers import collectbus_env, collectbus_in_process

S = 10**9
DATA = Path(__file__).resolve().parents[1] / "data"
PBS = (
    ("pbs/qstat_fx_json__alcf_aurora_pbs_monitor_head.json", "aurora", "America/Chicago"),
    ("pbs/qstat_fx_json__alcf_aurora_pbs_monitor_567e020.json", "aurora", "America/Chicago"),
    ("pbs/qstat_fx_json__metacentrum_running_job.json", "metacentrum", "Europe/Prague"),
)
SLURM = ("slurm/sacct_D_json_22.05_job_lives.json", "slurm/sacct_json_22.05.8.json")
#: Inside the Aurora runs: 6617175 ran 1753302936-1753324679, 6617182
#: 1753324801-1753346537, 6631289 1753324239-1753324407; each is clipped.
WINDOW = (1753324300 * S, 1753330000 * S)


def _latest(records: list[JobRecord]) -> int:
    times = [t for r in records for t in (r.submit_ns, r.start_ns, r.end_ns) if t is not None]
    return max(times) + 600 * S


def _collections() -> Iterator[list[JobRecord]]:
    for name, cluster, zone in PBS:
        payload = (DATA / name).read_bytes()
        parsed = parse_qstat_jobs(payload, cluster=cluster, zone=ZoneInfo(zone), observed_ns=0)
        seen = _latest(parsed.records)
        yield parse_qstat_jobs(
            payload, cluster=cluster, zone=ZoneInfo(zone), observed_ns=seen
        ).records
    for name in SLURM:
        payload = (DATA / name).read_bytes()
        seen = _latest(parse_sacct_json(payload, cluster=None, observed_ns=0))
        yield parse_sacct_json(payload, cluster=None, observed_ns=seen)


@pytest.fixture
def store(migrated_store_url: str) -> Iterator[Store]:
    s = open_store(migrated_store_url)
    tracked = TrackedStore(s)
    for records in _collections():
        tracked.apply(records, complete=False)
    yield s
    s.close()


def _recomputed(
    store: Store, by: str, since_ns: int | None, until_ns: int | None
) -> dict[str, dict[str, float]]:
    """Per user or project, from the stored rows, in a plain loop."""
    column = {"user": "username", "project": "account"}[by]
    query = text(
        f"SELECT cluster, job_id, array_parent, {column} AS who, cpus_requested, submit_ns,"
        " start_ns, end_ns, last_seen_ns FROM jobs"
        " WHERE last_seen_ns >= :since AND submit_ns < :until"
    )
    with store.jobs.reading() as conn:
        rows = (
            conn.execute(query, {"since": since_ns or 0, "until": until_ns or 2**62})
            .mappings()
            .all()
        )
    parents = {(r["cluster"], r["array_parent"]) for r in rows if r["array_parent"]}
    out: dict[str, dict[str, float]] = {}
    waits: dict[str, list[float]] = {}
    for r in rows:
        if (r["cluster"], r["job_id"]) in parents:
            continue
        who = r["who"] if r["who"] is not None else "(none)"
        group = out.setdefault(who, {"jobs": 0, "core_hours": 0.0})
        group["jobs"] += 1
        if r["start_ns"] is not None:
            waits.setdefault(who, []).append((r["start_ns"] - r["submit_ns"]) / S)
            if r["cpus_requested"] is not None:
                end = r["end_ns"] if r["end_ns"] is not None else r["last_seen_ns"]
                if until_ns is not None:
                    end = min(end, until_ns)
                start = max(r["start_ns"], since_ns or r["start_ns"])
                group["core_hours"] += r["cpus_requested"] * max(0, end - start) / S / 3600
    for who, values in waits.items():
        out[who]["mean"] = statistics.mean(values)
        out[who]["median"] = statistics.median(values)
    return out


def _check(table: pd.DataFrame, by: str, expected: dict[str, dict[str, float]]) -> None:
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    assert set(table[by]) == set(expected)
    for row in table.to_dict("records"):
        want = expected[row[by]]
        assert row["jobs"] == want["jobs"], row
        assert row["core_hours"] == pytest.approx(want["core_hours"], rel=1e-12), row
        if "mean" in want:
            assert row["mean_wait_s"] == pytest.approx(want["mean"]), row
            assert row["median_wait_s"] == pytest.approx(want["median"]), row
        else:
            assert pd.isna(row["mean_wait_s"]), row
            assert row["started"] == 0, row


@pytest.mark.parametrize("by", ["user", "project"])
@pytest.mark.parametrize("window", [(None, None), WINDOW], ids=["all", "clipped"])
def test_every_figure_equals_a_recomputation_from_the_stored_jobs(
    store: Store, by: str, window: tuple[int | None, int | None]
) -> None:
    since_ns, until_ns = window
    frame = jobs_frame(store, since_ns=since_ns, until_ns=until_ns)
    expected = _recomputed(store, by, since_ns, until_ns)
    assert expected, "the window holds no job: the test would prove nothing"
    table = top(frame, by=by, metric="jobs", since_ns=since_ns, until_ns=until_ns, limit=None)
    _check(table, by, expected)


def test_the_ranking_follows_the_metric(store: Store) -> None:
    frame = jobs_frame(store)
    expected = _recomputed(store, "user", None, None)
    for metric, figure in (("core-hours", "core_hours"), ("jobs", "jobs"), ("wait", "mean")):
        table = top(frame, by="user", metric=metric, limit=3)
        ranked = sorted(expected, key=lambda who: (-expected[who].get(figure, -1.0), who))
        assert list(table["user"]) == ranked[:3], metric
    # The jobs that never ran (held, queued, cancelled while pending) add no
    # core-hours and no wait: user65's three held EnergyApps jobs ask for
    # millions of CPUs, and rank last by core-hours.
    held = top(frame, by="user", metric="core-hours", limit=None)
    row = held[held["user"] == "user65"].iloc[0]
    assert (row["jobs"], row["core_hours"], row["started"]) == (3, 0.0, 0)
    assert pd.isna(row["mean_wait_s"])


def test_the_clipped_window_counts_only_the_time_inside_it(store: Store) -> None:
    since_ns, until_ns = WINDOW
    frame = jobs_frame(store, since_ns=since_ns, until_ns=until_ns)
    table = top(frame, by="project", since_ns=since_ns, until_ns=until_ns, limit=None)
    twin = table[table["project"] == "TwinBlood"].iloc[0]
    # 8,320 CPUs each: 6617175 from the window's start to its end at 1753324679,
    # 6617182 from its start at 1753324801 to the window's end at 1753330000.
    assert twin["core_hours"] == pytest.approx(
        8320 * ((324679 - 324300) + (330000 - 324801)) / 3600
    )


def test_mean_wait_agrees_with_analyze_wait_times(store: Store) -> None:
    frame = jobs_frame(store)
    leaders = top(frame, by="user", metric="wait", limit=None).set_index("user")
    waits = wait_times(frame, by="user", percentiles=(50,))
    queued = waits[waits["definition"] == "queued"].set_index("group")
    for user, row in queued.iterrows():
        assert leaders.loc[user, "mean_wait_s"] == pytest.approx(row["mean_s"])
        assert leaders.loc[user, "median_wait_s"] == pytest.approx(row["p50_s"])
        assert leaders.loc[user, "started"] == row["jobs"]


def test_the_command_prints_the_same_rows_as_json_csv_and_a_table(
    store: Store, tmp_path: Path
) -> None:
    env = collectbus_env(tmp_path, store.url)
    args = ("analyze", "top", "--since", "2022-01-01", "--by", "project", "--limit", "4")
    done = collectbus_in_process(*args, "--format", "json", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    expected = _recomputed(store, "project", None, None)
    ranked = sorted(expected, key=lambda who: (-expected[who]["core_hours"], who))
    assert [r["project"] for r in rows] == ranked[:4]
    assert rows[0]["core_hours"] == pytest.approx(expected[ranked[0]]["core_hours"])
    csv = collectbus_in_process(*args, "--format", "csv", cwd=tmp_path, env=env)
    header, *lines = csv.stdout.splitlines()
    assert header == "rank,project,jobs,core_hours,started,mean_wait_s,median_wait_s"
    assert [line.split(",")[1] for line in lines] == ranked[:4]
    table = collectbus_in_process(*args, cwd=tmp_path, env=env)
    assert table.returncode == 0, table.stderr
    assert "top projects by core-hours" in table.stdout
    assert ranked[0] in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--limit", "0"), "analyze top: --limit: 0 is not in the range x>=1"),
        (("--metric", "gpu-hours"), "analyze top: --metric: 'gpu-hours' is not one of"),
        (("--by", "queue"), "analyze top: --by: 'queue' is not one of 'user', 'project'"),
    ],
)
def test_bad_options_are_one_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'cb.db'}")
    done = collectbus_in_process("analyze", "top", *args, cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert done.stderr.startswith(f"collectbus: error: {message}")
    assert len(done.stderr.splitlines()) == 2  # the error and its hint


def test_an_empty_window_says_so(store: Store, tmp_path: Path) -> None:
    env = collectbus_env(tmp_path, store.url)
    done = collectbus_in_process(
        "analyze", "top", "--since", "1h", "--format", "json", cwd=tmp_path, env=env
    )
    assert done.returncode == 0
    assert done.stdout.strip() == "[]"
    assert "collectbus: no jobs found" in done.stderr
