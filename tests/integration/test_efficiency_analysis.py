"""``analyze efficiency``: per user, account, queue and partition, against an
independent recomputation from the stored rows (plain ``SELECT *`` and a
Python loop), on SQLite and PostgreSQL.

The jobs (stored by the job tracker) and their samples (by the store's
writer) are random but seeded, with the hostile cases among them: samples
on a host that is not the job's, samples before its start (an earlier job
of the same id), a job with no sample, a job with no core count, samples
whose values are NULL, a job still running.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from collectbus.analysis.efficiency import efficiency, job_efficiency
from collectbus.jobtrack.writer import TrackedStore
from collectbus.records import JobRecord, JobUsageSample
from collectbus.store import Store
from collectbus.store import open as open_store
from tests.integration.cli_helpers import collectbus_env, collectbus_in_process

S = 10**9
GIB = 2**30
NOW = 1_900_000_000 * S
USERS = ("ann", "bob", "cyd", None)
ACCOUNTS = ("p1", "p2")
QUEUES = ("batch", "gpu", "long")


def _jobs_and_samples(seed: int) -> tuple[list[JobRecord], list[JobUsageSample]]:
    rng = random.Random(seed)
    jobs, samples = [], []
    for n in range(60):
        start = NOW - rng.randrange(3600, 20 * 86400) * S
        running = n % 17 == 0
        end = None if running else start + rng.randrange(60, 7200) * S
        hosts = tuple(f"n{h}" for h in rng.sample(range(8), rng.randint(1, 3)))
        cores = None if n % 23 == 5 else rng.choice((1, 2, 8, 32))
        job_id = str(1000 + n)
        jobs.append(
            JobRecord(
                cluster="c1", scheduler="slurm", job_id=job_id, submit_ns=start - 30 * S,
                observed_ns=NOW, state="running" if running else "completed", native_state="X",
                user=USERS[n % 4], account=ACCOUNTS[n % 2], queue=QUEUES[n % 3],
                exec_hosts=hosts, nodes_requested=len(hosts), cpus_requested=cores,
                mem_requested_bytes=None if n % 11 == 3 else rng.choice((4, 16, 64)) * GIB,
                start_ns=start, end_ns=end,
            )
        )  # fmt: skip
        if n % 13 == 7:
            continue  # no sample at all
        stop = NOW if end is None else end
        for host in (*hosts, "login1"):  # login1 is not the job's
            cpu = 0.0
            for t in range(start + 5 * S, stop, max(S, (stop - start) // 6)):
                cpu += rng.uniform(0, (cores or 1) * 60)
                null = rng.random() < 0.1
                samples.append(
                    JobUsageSample(
                        cluster="c1", job_id=job_id, host=host, time_ns=t, source="cgroup",
                        cpu_seconds=None if null else cpu,
                        mem_bytes=None if null else rng.randrange(GIB),
                        mem_peak_bytes=None if null or rng.random() < 0.3 else rng.randrange(2 * GIB),
                    )
                )  # fmt: skip
        # The same id's earlier job, before this one started.
        samples.append(
            JobUsageSample(
                cluster="c1", job_id=job_id, host=hosts[0], time_ns=start - 10 * S,
                source="cgroup", cpu_seconds=1e9, mem_bytes=100 * GIB,
            )
        )  # fmt: skip
    return jobs, samples


@pytest.fixture
def store(migrated_store_url: str) -> Iterator[Store]:
    s = open_store(migrated_store_url)
    jobs, samples = _jobs_and_samples(7)
    TrackedStore(s).apply(jobs, complete=False)
    s.write(samples)
    yield s
    s.close()


def _recomputed(store: Store, by: str, since_ns: int) -> dict[str, dict[str, float]]:
    """The expected figures, from every stored row, in plain Python."""
    with store.engine.connect() as conn:
        jobs = [dict(r) for r in conn.execute(text("SELECT * FROM jobs")).mappings()]
        samples = [dict(r) for r in conn.execute(text("SELECT * FROM job_usage")).mappings()]
    column = {"user": "username", "account": "account", "queue": "queue", "partition": "queue"}[by]
    groups: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for job in jobs:
        if job["start_ns"] is None or job["last_seen_ns"] < since_ns:
            continue
        end = job["end_ns"] if job["end_ns"] is not None else NOW
        hosts = job["exec_hosts"].split(",")
        cpu: dict[str, float] = {}
        mem: dict[str, float] = {}
        for s in samples:
            mine = (s["cluster"], s["job_id"]) == (job["cluster"], job["job_id"])
            if mine and s["host"] in hosts and job["start_ns"] <= s["time_ns"] <= end:
                if s["cpu_seconds"] is not None:
                    cpu[s["host"]] = max(cpu.get(s["host"], 0.0), s["cpu_seconds"])
                for value in (s["mem_bytes"], s["mem_peak_bytes"]):
                    if value is not None:
                        mem[s["host"]] = max(mem.get(s["host"], 0), value)
        g = groups[job[column] or "(none)"]
        g["jobs"] += 1
        if not cpu or not job["cpus_requested"]:
            continue
        requested = job["cpus_requested"] * (end - job["start_ns"]) / S / 3600
        used = sum(cpu.values()) / 3600
        g["measured"] += 1
        g["requested"] += requested
        g["used"] += used
        g["wasted"] += max(0.0, requested - used)
        g["below"] += used / requested < 0.25
        if mem and job["mem_requested_bytes"] is not None:
            g["mem_req"] += job["mem_requested_bytes"]
            g["mem_peak"] += sum(mem.values())
    return groups


@pytest.mark.parametrize("by", ["user", "account", "queue", "partition"])
def test_efficiency_agrees_with_a_recomputation(store: Store, by: str) -> None:
    since = NOW - 10 * 86400 * S
    jobs = job_efficiency(store, since_ns=since, until_ns=NOW, now_ns=NOW)
    table = efficiency(jobs, by=by, min_efficiency=0.25)
    expected = _recomputed(store, by, since)
    assert set(table[by]) == set(expected)
    assert sum(e["measured"] for e in expected.values()) > 10  # the case is not empty
    for row in table.to_dict("records"):
        e = expected[row[by]]
        assert row["jobs"] == e["jobs"]
        assert row["measured"] == e["measured"]
        assert row["core_hours_requested"] == pytest.approx(e["requested"])
        assert row["core_hours_used"] == pytest.approx(e["used"])
        assert row["wasted_core_hours"] == pytest.approx(e["wasted"])
        assert row["below_min"] == e["below"]
        if e["requested"]:
            assert row["efficiency"] == pytest.approx(e["used"] / e["requested"])
        if e["mem_req"]:
            assert row["mem_efficiency"] == pytest.approx(e["mem_peak"] / e["mem_req"])
    wasted = list(table["wasted_core_hours"])
    assert wasted == sorted(wasted, reverse=True)


def test_cli_table_json_csv(migrated_sqlite_url: str, tmp_path: Path) -> None:
    with open_store(migrated_sqlite_url) as s:
        jobs, samples = _jobs_and_samples(7)
        TrackedStore(s).apply(jobs, complete=False)
        s.write(samples)
    env = collectbus_env(tmp_path, migrated_sqlite_url)
    window = ("--since", "2030-01-01", "--until", "2031-01-01")
    args = ("analyze", "efficiency", *window, "--by", "account")
    done = collectbus_in_process(
        *args, "--format", "json", "--min-efficiency", "25%", cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert {r["account"] for r in rows} == set(ACCOUNTS)
    assert all("below_min" in r for r in rows)
    table = collectbus_in_process(*args, cwd=tmp_path, env=env)
    assert "core-h wasted" in table.stdout
    csv = collectbus_in_process(*args, "--format", "csv", cwd=tmp_path, env=env)
    assert csv.stdout.splitlines()[0].startswith("account,jobs,measured,core_hours_requested")
    bad = collectbus_in_process(*args, "--min-efficiency", "150%", cwd=tmp_path, env=env)
    assert bad.returncode == 2
    assert "between 0 and 1" in bad.stderr
