"""Every command's ``--format json`` output, on a store with every kind of
data, is valid against its JSON Schema (src/collectbus/cli/schemas/)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from collectbus.records import CallRecord, CollectionEvent, HostInventory, JobUsageSample
from collectbus.store import open as open_store
from collectbus.store.jobquery import read_jobs
from collectbus.testing.hosts import make_host_sample
from tests.fakes.pbs.scenario import FAKES, JOB_A, SERVER, ZONE, build_scenario, stage
from tests.integration.cli_helpers import collectbus, collectbus_env

jsonschema = pytest.importorskip("jsonschema")

pytestmark = pytest.mark.slow

SCHEMAS = Path(__file__).resolve().parents[2] / "src" / "collectbus" / "cli" / "schemas"
PBS_DATA = Path(__file__).resolve().parents[1] / "data" / "pbs"
S = 10**9

#: (schema, command line): every command that prints data, with --format json.
COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("host", ("host", "--since", "1h")),
    ("host", ("host", "--since", "1h", "--metric", "cpu")),
    ("host", ("host", "--since", "1h", "--metric", "cpu,mem,psi,disk,net,percpu,load,uptime")),
    ("host", ("host", "--since", "1h", "--metric", "net", "--every", "1m")),
    ("host-inventory", ("host", "inventory")),
    ("hosts", ("hosts",)),
    ("hosts", ("hosts", "--sort", "cpu", "--top", "1")),
    ("calls", ("calls", "--since", "1h")),
    ("calls", ("calls", "--since", "1h", "--errors")),
    ("calls", ("calls", "--since", "1h", "--slowest", "3")),
    ("calls-stats", ("calls", "--since", "1h", "--stats")),
    ("jobs", ("jobs", "--since", "2022-10-01")),
    ("job", ("job", JOB_A)),
    ("job-usage", ("job", JOB_A, "--usage")),
    ("history", ("history", "--since", "2022-10-01")),
    ("nodes", ("nodes",)),
    ("queues", ("queues",)),
    ("reservations", ("reservations",)),
    ("reservation-history", ("reservations", "--history")),
    ("analyze-summary", ("analyze", "wait-times", "--since", "2022-10-01")),
    ("analyze-summary", ("analyze", "wait-times", "--since", "2022-10-01", "--by", "queue")),
    ("analyze-summary", ("analyze", "runtime", "--since", "2022-10-01")),
    ("analyze-summary", ("analyze", "walltime-efficiency", "--since", "2022-10-01")),
    ("analyze-top", ("analyze", "top", "--since", "2022-10-01")),
    ("analyze-top", ("analyze", "top", "--since", "2022-10-01", "--by", "project")),
    ("analyze-top", ("analyze", "top", "--since", "2022-10-01", "--metric", "wait")),
    ("analyze-series", ("analyze", "queue-depth", "--since", "2022-10-01")),
    ("analyze-efficiency", ("analyze", "efficiency", "--since", "2022-10-01")),
    (
        "analyze-efficiency",
        (
            "analyze",
            "efficiency",
            "--since",
            "2022-10-01",
            "--by",
            "partition",
            "--min-efficiency",
            "0.5",
        ),
    ),
    ("analyze-series", ("analyze", "node-states", "--since", "2022-10-01")),
    ("aggregate-run", ("aggregate", "run")),
    ("aggregate-show", ("aggregate", "show", "calls_by_handler")),
    ("aggregate-list", ("aggregate", "list")),
    ("db-status", ("db", "status")),
    ("db-status", ("db", "status", "--exact")),
    ("db-cleanup", ("db", "cleanup", "--dry-run", "--snapshot-days", "1")),
    ("collect-host", ("collect", "host")),
    ("collect-processes", ("collect", "processes", "--interval", "100ms")),
)


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A SQLite store with host samples, an inventory, calls, PBS jobs, nodes and
    queues (collected from the fake PBS as the daemon stores them), and an aggregate."""
    tmp_path = tmp_path_factory.mktemp("populated")
    url = f"sqlite:///{tmp_path / 'cb.db'}"
    now = time.time_ns()
    with open_store(url) as store:
        for i in range(6):
            t = now - (6 - i) * 10 * S
            store.write([make_host_sample("a", t, psi=True, cgroup=True)])
        store.write([HostInventory(host="a", time_ns=now - 60 * S, document='{"cpu": {}}')])
        store.write(
            [
                CallRecord(
                    handler=f"h{i % 2}", qualname="m.f", host="a", pid=1, thread_id=1,
                    started_ns=now - i * S, elapsed_ns=(i + 1) * 1_000_000,
                    error_type="ValueError" if i == 3 else None,
                    error_message="bad" if i == 3 else None,
                )
                for i in range(8)
            ]
        )  # fmt: skip
        store.write(
            [
                CollectionEvent(
                    source="pbs-jobs", host="a", started_ns=now - S, duration_ns=5_000_000,
                    status="ok", details=(("server", SERVER),),
                )
            ]
        )  # fmt: skip
    scenario = build_scenario(tmp_path / "pbs")
    config = tmp_path / "collectbus.toml"
    config.write_text(
        f'[collectors.pbs]\nenabled = true\ncluster = "metacentrum"\nbin_dir = "{FAKES}"\n'
        f'server = "{SERVER}"\ntimezone = "{ZONE}"\nhistory = true\n\n'
        '[[aggregates]]\nname = "calls_by_handler"\ntable = "calls"\nkeys = ["handler"]\n'
        'measures = ["elapsed_ns"]\nerror_column = "error_type"\n'
    )
    env = {**collectbus_env(tmp_path, url), "COLLECTBUS_CONFIG": str(config), **scenario.env}
    for step in ("queued", "running", "finished"):
        scenario.activate(step)
        done = collectbus("jobs", "--collect", "--since", "2022-10-01", cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
    step = tmp_path / "pbs" / "finished"
    stage(step, "nodes", PBS_DATA / "pbsnodes_av_json__0nebody_pbs_exporter_node.json")
    stage(step, "queues", PBS_DATA / "qstat_Qf_json__ncar_derecho.json")
    stage(step, "reservations", PBS_DATA / "reservations" / "pbs_rstat_f.txt")
    for entity in ("nodes", "queues", "reservations"):
        done = collectbus(entity, "--collect", cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
    _job_usage_samples(url)
    # The aggregate's first update here, so that ``aggregate show`` has
    # something to show whichever test (or test worker) runs first.
    done = collectbus("aggregate", "run", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    env["COLLECTBUS_PROC_ROOT"] = "/proc"
    return tmp_path, env


def _job_usage_samples(url: str) -> None:
    """Samples of JOB_A on its hosts within its window, as the jobusage
    collector stores them, so that ``job --usage`` has figures to print."""
    with open_store(url) as store:
        with store.reading() as conn:
            (job,) = read_jobs(conn, job_id=JOB_A)
        start, end = int(str(job["start_ns"])), int(str(job["end_ns"]))
        hosts = str(job["exec_hosts"]).split(",")
        step = (end - start) // 4
        store.write(
            [
                JobUsageSample(
                    cluster=str(job["cluster"]), job_id=JOB_A, host=host,
                    time_ns=start + i * step, source="cgroup", cpu_seconds=i * 1.5,
                    mem_bytes=2**20 * i, mem_peak_bytes=2**20 * i, read_bytes=None,
                    write_bytes=4096 * i, processes=2,
                )
                for host in hosts
                for i in range(1, 4)
            ]
        )  # fmt: skip


def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / f"{name}.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    assert cls is jsonschema.Draft202012Validator
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@pytest.mark.parametrize(("schema", "args"), COMMANDS, ids=[" ".join(a) for _, a in COMMANDS])
def test_json_output_is_valid_against_its_schema(
    populated: tuple[Path, dict[str, str]], schema: str, args: tuple[str, ...]
) -> None:
    cwd, env = populated
    result = collectbus(*args, "--format", "json", cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document, f"{' '.join(args)} printed nothing to check"
    errors = sorted(_validator(schema).iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def test_daemon_status_when_stopped_is_valid_against_its_schema(
    populated: tuple[Path, dict[str, str]],
) -> None:
    cwd, env = populated
    result = collectbus("daemon", "status", "--format", "json", cwd=cwd, env=env)
    assert result.returncode == 3
    document = json.loads(result.stdout)
    assert document["state"] == "stopped"
    _validator("daemon-status").validate(
        document
    )  # running: tests/integration/test_daemon_files.py


def test_run_summary_is_valid_against_its_schema(tmp_path: Path) -> None:
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'run.db'}")
    result = collectbus("run", "--duration", "1s", "--format", "json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["samples"] >= 1
    _validator("run").validate(document)


def test_a_schema_refuses_what_it_does_not_describe() -> None:
    stopped = {"state": "stopped", "pid_file": "/x.pid", "log_file": "/x.log"}
    _validator("daemon-status").validate(stopped)
    with pytest.raises(jsonschema.ValidationError):
        _validator("daemon-status").validate({**stopped, "state": "running"})  # no pid
    with pytest.raises(jsonschema.ValidationError):
        _validator("db-status").validate([{"item": "database", "value": "sqlite://"}])
    row = {"metric": "disk", "time": "2026-12-07T17:30:43.000Z", "time_ns": 1, "host": "a"}
    with pytest.raises(jsonschema.ValidationError, match="'device' is a required property"):
        _validator("host").validate([row])
    with pytest.raises(jsonschema.ValidationError, match="does not match"):
        _validator("host").validate([{**row, "metric": "cpu", "time": "2026-12-07 17:30:43"}])


def test_every_schema_is_used_and_every_json_command_has_one() -> None:
    assert {p.stem for p in SCHEMAS.glob("*.json")} == {name for name, _ in COMMANDS} | {
        "daemon-status",
        "run",
    }
