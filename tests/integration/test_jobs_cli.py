"""The scheduler commands, run as a user runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import pytest

from collectbus.cli.main import main
from collectbus.jobtrack.writer import TrackedStore
from collectbus.records import COMPLETE_LISTING, CollectionEvent, NodeRecord, QueueRecord
from collectbus.store import open as open_store
from collectbus.testing.schedulers import make_pbs_job
from tests.integration.cli_helpers import collectbus, collectbus_env, collectbus_in_process

S = 10**9
M = 60 * S


def _event(t: int) -> CollectionEvent:
    return CollectionEvent(
        source="pbs",
        host="pbs01",
        started_ns=t,
        duration_ns=S,
        status="ok",
        details=(COMPLETE_LISTING, ("cluster", "aurora")),
    )


def _populate(url: str, t0: int) -> None:
    """Three jobs over 30 minutes: 1 runs and ends, 2 waits then runs, 3 is held."""

    def job(n: int, t: int, state: str, **kw: object) -> object:
        return make_pbs_job(
            n,
            submit_ns=t0 - 10 * M,
            observed_ns=t,
            state=state,
            user=f"user{n}",
            account="climate" if n < 3 else "fusion",
            eligible_ns=t0 - 9 * M,
            eligible_s=60 * n,
            **kw,  # type: ignore[arg-type]
        )

    listings = [
        [job(1, t0, "running", start_ns=t0 - 5 * M), job(2, t0, "queued"), job(3, t0, "held")],
        [
            job(
                1,
                t0 + 10 * M,
                "completed",
                start_ns=t0 - 5 * M,
                end_ns=t0 + 5 * M,
                walltime_used_s=600,
            ),
            job(2, t0 + 10 * M, "running", start_ns=t0 + 8 * M),
            job(3, t0 + 10 * M, "held"),
        ],
    ]
    store = open_store(url)
    jobs = TrackedStore(store)
    try:
        for k, listing in enumerate(listings):
            t = t0 + k * 10 * M
            nodes = [
                NodeRecord(
                    cluster="aurora",
                    scheduler="pbs",
                    node=f"x{i}",
                    observed_ns=t,
                    state="allocated" if i <= k else "idle",
                    native_state="free",
                    cpus_total=208,
                    cpus_allocated=208 if i <= k else 0,
                )
                for i in range(3)
            ]
            queue = QueueRecord(
                cluster="aurora",
                scheduler="pbs",
                queue="prod",
                observed_ns=t,
                enabled=True,
                started=True,
                jobs_total=3,
                jobs_queued=1 - k,
                jobs_running=1,
                jobs_held=1,
            )
            jobs.write([*listing, *nodes, queue, _event(t)])  # type: ignore[list-item]
    finally:
        store.close()


@pytest.fixture
def t0() -> int:
    # Whole seconds, so that --since and --until given in epoch seconds are exact.
    return time.time_ns() // S * S - 40 * M


@pytest.fixture
def env(tmp_path: Path, migrated_store_url: str, t0: int) -> dict[str, str]:
    _populate(migrated_store_url, t0)
    return collectbus_env(tmp_path, migrated_store_url)


def test_jobs_lists_and_filters(tmp_path: Path, env: dict[str, str]) -> None:
    table = collectbus("jobs", cwd=tmp_path, env=env)
    assert table.returncode == 0, table.stderr
    for n in (1, 2, 3):
        assert f"{n}.pbs01.example.org" in table.stdout
    out = collectbus("jobs", "-s", "held", "--format", "json", cwd=tmp_path, env=env)
    rows = json.loads(out.stdout)
    assert [(r["job_id"], r["user"], r["state"]) for r in rows] == [
        ("3.pbs01.example.org", "user3", "held")
    ]
    out = collectbus("jobs", "-u", "user2", "--format", "csv", cwd=tmp_path, env=env)
    (row,) = csv.DictReader(io.StringIO(out.stdout))
    assert (row["state"], row["wait_queued_s"]) == ("running", str(18 * 60.0))


def test_job_shows_every_state_change(tmp_path: Path, env: dict[str, str], t0: int) -> None:
    out = collectbus_in_process("job", "2", "--format", "json", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    (found,) = json.loads(out.stdout)
    assert found["job"]["job_id"] == "2.pbs01.example.org"
    changes = [
        (h["field"], h["old_value"], h["new_value"], h["observed_ns"]) for h in found["history"]
    ]
    assert ("state", None, "queued", t0) in changes
    assert ("state", "queued", "running", t0 + 10 * M) in changes
    table = collectbus_in_process("job", "2.pbs01.example.org", cwd=tmp_path, env=env)
    assert "first seen" in table.stdout
    assert "running" in table.stdout
    missing = collectbus_in_process("job", "999", cwd=tmp_path, env=env)
    assert missing.returncode == 1
    assert missing.stderr.startswith("collectbus: error: ")
    assert "no job '999'" in missing.stderr


def test_history_nodes_and_queues(tmp_path: Path, env: dict[str, str]) -> None:
    out = collectbus_in_process(
        "history", "--job", "1.pbs01.example.org", "--format", "csv", cwd=tmp_path, env=env
    )
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [(r["field"], r["new_value"]) for r in rows if r["field"] == "state"] == [
        ("state", "running"),
        ("state", "completed"),
    ]
    # Without its server, as collectbus job takes it.
    short = collectbus_in_process("history", "--job", "1", "--format", "csv", cwd=tmp_path, env=env)
    assert list(csv.DictReader(io.StringIO(short.stdout))) == rows
    nodes = json.loads(
        collectbus_in_process("nodes", "--format", "json", cwd=tmp_path, env=env).stdout
    )
    assert {n["node"]: n["state"] for n in nodes} == {
        "x0": "allocated",
        "x1": "allocated",
        "x2": "idle",
    }
    queues = json.loads(
        collectbus_in_process("queues", "--format", "json", cwd=tmp_path, env=env).stdout
    )
    assert [(q["queue"], q["jobs_queued"]) for q in queues] == [("prod", 0)]


def test_analyze_wait_times_names_the_three_definitions(
    tmp_path: Path, env: dict[str, str]
) -> None:
    out = collectbus_in_process(
        "analyze", "wait-times", "--percentiles", "50", "--format", "json", cwd=tmp_path, env=env
    )
    assert out.returncode == 0, out.stderr
    rows = {r["definition"]: r for r in json.loads(out.stdout)}
    # Job 1: submit -10 m, eligible -9 m, start -5 m, eligible_time 60 s.
    # Job 2: start +8 m, eligible_time 120 s. Job 3 never started.
    assert rows["queued"]["jobs"] == 2
    assert rows["queued"]["p50_s"] == pytest.approx((5 + 18) / 2 * 60)
    assert rows["eligible"]["p50_s"] == pytest.approx((4 + 17) / 2 * 60)
    assert rows["eligible_seconds"]["p50_s"] == pytest.approx(90)
    table = collectbus_in_process("analyze", "wait-times", "--by", "project", cwd=tmp_path, env=env)
    assert "eligible_seconds: PBS's own accrued eligible_time" in table.stdout
    assert "climate" in table.stdout
    eff = json.loads(
        collectbus_in_process(
            "analyze", "walltime-efficiency", "--format", "json", cwd=tmp_path, env=env
        ).stdout
    )
    assert eff[0]["jobs"] == 1
    assert eff[0]["p50"] == pytest.approx(600 / 3600)


def test_analyze_series(tmp_path: Path, env: dict[str, str], t0: int) -> None:
    since = str((t0 + 5 * M) // S)
    until = str((t0 + 15 * M) // S)
    out = collectbus_in_process(
        "analyze",
        "queue-depth",
        "--overall",
        "--since",
        since,
        "--until",
        until,
        "--step",
        "5m",
        "--format",
        "json",
        cwd=tmp_path,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [(r["queued"], r["held"], r["running"]) for r in rows] == [(1, 1, 1), (0, 1, 1)]
    out = collectbus_in_process(
        "analyze",
        "node-states",
        "--since",
        since,
        "--until",
        until,
        "--step",
        "5m",
        "--format",
        "csv",
        cwd=tmp_path,
        env=env,
    )
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [(r["allocated"], r["idle"]) for r in rows] == [("1", "2"), ("2", "1")]


def test_db_cleanup_dry_run_then_for_real(tmp_path: Path, env: dict[str, str]) -> None:
    args = (
        "db",
        "cleanup",
        "--job-history-days",
        "0.0001",
        "--jobs-days",
        "0.0001",
        "--format",
        "json",
    )
    dry = collectbus_in_process(*args, "--dry-run", cwd=tmp_path, env=env)
    assert dry.returncode == 0, dry.stderr
    counts = {r["table"]: r["rows"] for r in json.loads(dry.stdout)}
    # Every change is older than 9 s; job 1 is the only finished one.
    assert counts["job_history"] > 0
    assert counts["jobs"] == 1
    again = {
        r["table"]: r["rows"]
        for r in json.loads(collectbus_in_process(*args, "--dry-run", cwd=tmp_path, env=env).stdout)
    }
    assert again == counts
    done = {
        r["table"]: r["rows"]
        for r in json.loads(collectbus_in_process(*args, cwd=tmp_path, env=env).stdout)
    }
    assert done["job_history"] == counts["job_history"]
    assert done["jobs"] == 1
    left = json.loads(
        collectbus_in_process("jobs", "--format", "json", cwd=tmp_path, env=env).stdout
    )
    assert sorted(r["job_id"] for r in left) == ["2.pbs01.example.org", "3.pbs01.example.org"]


def test_an_empty_database_says_so(
    tmp_path: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = collectbus_env(tmp_path, sqlite_url)
    missing = collectbus("jobs", cwd=tmp_path, env=env)
    assert missing.returncode == 1
    assert missing.stderr.startswith("collectbus: error: ")
    assert "no such database file" in missing.stderr
    assert collectbus("db", "init", cwd=tmp_path, env=env).returncode == 0
    out = collectbus("jobs", "--format", "json", cwd=tmp_path, env=env)
    assert (out.returncode, out.stdout.strip()) == (0, "[]")
    assert out.stderr.splitlines() == [
        "collectbus: no jobs found",
        "  hint: widen --since; or the PBS and Slurm collectors are off by default: set"
        " enabled = true in [collectors.pbs] or [collectors.slurm], then run collectbus"
        " daemon start",
    ]
    # The other commands in this process, as the entry point runs them.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    for args in (
        ["history"],
        ["nodes"],
        ["queues"],
        ["analyze", "wait-times"],
        ["analyze", "runtime"],
        ["analyze", "walltime-efficiency"],
        ["analyze", "queue-depth"],
        ["analyze", "node-states"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        captured = capsys.readouterr()
        assert exit_info.value.code == 0, (args, captured.err)
        assert captured.err.startswith("collectbus: no "), (args, captured.err)
        assert captured.out == ""
