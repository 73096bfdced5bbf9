"""``collectbus job ID --usage``: the report, its JSON, and its failures.

A Slurm job stored by the job tracker, its samples and its nodes' host
samples stored by the store's writers; every expected figure is worked out
here from what the test wrote.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from collectbus.jobtrack.writer import TrackedStore
from collectbus.records import JobRecord, JobUsageSample
from collectbus.store import open as open_store
from collectbus.testing.hosts import make_host_sample
from tests.integration.cli_helpers import collectbus_env, collectbus_in_process

S = 10**9
GIB = 2**30
CORES = 48
ELAPSED_S = 600


def _job(job_id: str, start_ns: int | None, end_ns: int | None, **kw: object) -> JobRecord:
    return JobRecord(
        cluster="hpc1", scheduler="slurm", job_id=job_id, submit_ns=(start_ns or time.time_ns()) - 60 * S,
        observed_ns=time.time_ns(), state=str(kw.pop("state", "completed")), native_state="X",
        user="ann", account="proj", queue="batch", exec_hosts=kw.pop("exec_hosts", ("n1", "n2")), nodes_requested=2,
        cpus_requested=CORES, mem_requested_bytes=64 * GIB, start_ns=start_ns, end_ns=end_ns,
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'cb.db'}"
    t0 = time.time_ns() - 3600 * S
    with open_store(url) as store:
        TrackedStore(store).apply(
            [
                _job("77", t0, t0 + ELAPSED_S * S),
                _job("78", t0, t0 + ELAPSED_S * S),
                _job("79", None, None, state="queued", exec_hosts=()),
            ],
            complete=False,
        )
        store.write(
            [make_host_sample(h, t0 + t * S) for h in ("n1", "n2") for t in range(0, 660, 60)]
        )
        # Each node: 2 cores busy, 600 MiB at its peak, until the last sample at 590 s.
        store.write(
            [
                JobUsageSample(
                    cluster="hpc1", job_id="77", host=h, time_ns=t0 + t * S, source="cgroup",
                    cpu_seconds=2.0 * t, mem_bytes=600 * 2**20, mem_peak_bytes=600 * 2**20,
                    read_bytes=1000 * t, write_bytes=None, processes=3,
                )
                for h in ("n1", "n2")
                for t in range(50, 600, 60)
            ]
        )  # fmt: skip
    return collectbus_env(tmp_path, url)


def test_report_table_and_json_agree_with_the_samples(tmp_path: Path, env: dict[str, str]) -> None:
    done = collectbus_in_process("job", "77", "--usage", "--format", "json", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    cpu = 2 * 2.0 * 590  # two nodes, each at its last sample
    assert doc["cpu_seconds"] == pytest.approx(cpu)
    assert doc["cpu_efficiency"] == pytest.approx(cpu / (CORES * ELAPSED_S))
    assert doc["mem_peak_bytes"] == 2 * 600 * 2**20
    assert doc["read_bytes"] == 2 * 1000 * 590
    assert doc["write_bytes"] is None
    assert [n["host"] for n in doc["per_node"]] == ["n1", "n2"]
    assert doc["per_node"][0]["cpu_efficiency"] == pytest.approx(2.0 * 590 / (24 * ELAPSED_S))
    assert doc["verdicts"] == [
        "used 8 % of 48 cores: ask for 4",
        "memory peak 1.2 GiB of 64 GiB requested: ask for 2 GiB",
    ]
    table = collectbus_in_process("job", "77", "--usage", cwd=tmp_path, env=env)
    assert table.returncode == 0, table.stderr
    assert "8.2 %" in table.stdout  # the CPU efficiency, rounded
    assert "used 8 % of 48 cores: ask for 4" in table.stdout
    csv = collectbus_in_process("job", "77", "--usage", "--format", "csv", cwd=tmp_path, env=env)
    assert csv.stdout.splitlines()[0].startswith("host,samples,source,cores,cpu_seconds")
    assert len(csv.stdout.splitlines()) == 3


def test_no_samples_and_not_started_say_why(tmp_path: Path, env: dict[str, str]) -> None:
    done = collectbus_in_process("job", "78", "--usage", "--format", "json", cwd=tmp_path, env=env)
    doc = json.loads(done.stdout)
    assert doc["cpu_efficiency"] is None
    assert doc["mem_peak_bytes"] is None
    assert "jobusage collector" in doc["reason"]
    table = collectbus_in_process("job", "78", "--usage", cwd=tmp_path, env=env)
    assert "no figures: no job_usage sample in its window" in table.stdout
    queued = collectbus_in_process("job", "79", "--usage", cwd=tmp_path, env=env)
    assert "has not started" in queued.stdout


def test_unknown_job_and_bad_combination_are_one_line_errors(
    tmp_path: Path, env: dict[str, str]
) -> None:
    done = collectbus_in_process("job", "12345", "--usage", cwd=tmp_path, env=env)
    assert done.returncode != 0
    assert "no job '12345'" in done.stderr
    assert "Traceback" not in done.stderr
    both = collectbus_in_process("job", "77", "--usage", "--raw", cwd=tmp_path, env=env)
    assert both.returncode == 2
    assert "--usage and --raw" in both.stderr


def test_only_usage_imports_pandas(tmp_path: Path, env: dict[str, str]) -> None:
    code = textwrap.dedent(
        """
        import contextlib, io, sys
        from collectbus.cli.main import main
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                main(sys.argv[1:])
            except SystemExit:
                pass
        print("pandas" in sys.modules)
        """
    )
    url = env["COLLECTBUS_DB_URL"]
    found = {}
    for extra in ((), ("--usage",)):
        done = subprocess.run(
            [sys.executable, "-c", code, "--db", url, "job", "77", *extra],
            capture_output=True, text=True, check=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
        found[extra] = done.stdout.strip()
    assert found == {(): "False", ("--usage",): "True"}
