"""The Slurm collectors against fake squeue/sinfo/sacct/scontrol run as real subprocesses.

The fakes (tests/fakes/slurm/) print the recorded output of a real Slurm
22.05.8, or fail the way Slurm's commands fail: exit 1, hang, print truncated
JSON or text that is not JSON.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collectbus.bus import CollectionBus
from collectbus.collectors.base import CollectContext
from collectbus.collectors.run import LocalRunner
from collectbus.collectors.slurm.collector import (
    SlurmJobsCollector,
    SlurmNodesCollector,
    SlurmPartitionsCollector,
    SlurmSettings,
)
from collectbus.collectors.slurm.reservations import SlurmReservationsCollector
from collectbus.config import load_config
from collectbus.errors import CollectError, CommandFailed, CommandTimeout, ConfigError, ParseError
from collectbus.pipeline import PBS_TIMEOUT_MARGIN_S, SLURM_COMMANDS, scheduler_collectors
from collectbus.records import JobRecord, NodeRecord, QueueRecord, SystemRecord

TESTS = Path(__file__).resolve().parents[3]
FAKES = TESTS / "fakes" / "slurm"
DATA = TESTS / "data" / "slurm"


def _runner(
    squeue: str = "ok", sacct: str = "json", timeout: float = 10.0, sacct_text: str = "ok"
) -> LocalRunner:
    env = {
        **os.environ,
        "FAKE_SLURM_DATA": str(DATA),
        "FAKE_SLURM_MODE": squeue,
        "FAKE_SACCT_MODE": sacct,
        "FAKE_SACCT_TEXT": sacct_text,
    }
    return LocalRunner(timeout=timeout, env=env)


def _settings(**kw: object) -> SlurmSettings:
    return SlurmSettings(bin_dir=str(FAKES), **kw)  # type: ignore[arg-type]


def _jobs(records: list) -> dict[str, JobRecord]:  # type: ignore[type-arg]
    return {r.job_id: r for r in records if isinstance(r, JobRecord)}


@pytest.fixture
def ctx() -> CollectContext:
    return CollectContext(host="h")


# ------------------------------------------------------------------ jobs


def test_jobs_from_squeue_plus_finished_from_sacct(ctx: CollectContext) -> None:
    collector = SlurmJobsCollector(_settings(), runner=_runner())
    records = collector.collect(ctx)
    jobs = _jobs(records)
    # squeue lists 1-6; sacct adds 7, 8 and the array 9_[1-3]
    assert sorted(jobs) == ["1", "2", "3", "4", "5", "6", "7", "8", "9_1", "9_2", "9_3"]
    assert {j.cluster for j in jobs.values()} == {"testcluster"}
    assert jobs["3"].exit_status == 3  # squeue's raw 768
    (mark,) = [r for r in records if isinstance(r, SystemRecord)]
    assert mark.jobs_total == 6  # the listing is complete: every job squeue listed
    assert dict(mark.state_counts) == {"COMPLETED": 4, "FAILED": 1, "TIMEOUT": 1}
    assert ctx.problems == []
    assert collector.accounting == "slurmdbd"


def test_configured_cluster_and_user_filter(ctx: CollectContext) -> None:
    collector = SlurmJobsCollector(_settings(cluster="site", users=("nobody",)), runner=_runner())
    records = collector.collect(ctx)
    assert _jobs(records) == {}
    (mark,) = records
    assert isinstance(mark, SystemRecord)
    assert (mark.cluster, mark.jobs_total) == ("site", 0)


def test_state_filter_keeps_failed_jobs_only(ctx: CollectContext) -> None:
    collector = SlurmJobsCollector(_settings(states=("failed",)), runner=_runner())
    assert sorted(_jobs(collector.collect(ctx))) == ["3", "8"]


@pytest.mark.parametrize(
    ("mode", "error", "message"),
    [
        (
            "fail",
            CommandFailed,
            r"squeue --json: exited with status 1: squeue: error: Unable to contact",
        ),
        ("truncated", ParseError, r"squeue --json:\d+: invalid JSON at column \d+"),
        ("garbage", ParseError, r"squeue --json:1: invalid JSON"),
    ],
)
def test_bad_squeue_fails_the_collection(
    ctx: CollectContext, mode: str, error: type[Exception], message: str
) -> None:
    collector = SlurmJobsCollector(_settings(), runner=_runner(squeue=mode))
    with pytest.raises(error, match=message) as info:
        collector.collect(ctx)
    assert "\n" not in str(info.value)
    assert str(FAKES / "squeue") in str(info.value)  # names the command it ran


def test_hanging_squeue_is_killed_at_the_timeout(ctx: CollectContext) -> None:
    collector = SlurmJobsCollector(_settings(timeout_s=0.5), runner=_runner(squeue="hang"))
    with pytest.raises(
        CommandTimeout, match=r"squeue --json: timed out after 0\.5 s and was killed"
    ):
        collector.collect(ctx)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("fail", "squeue --json: exited with status 1: squeue: error: Unable to contact"),
        ("truncated", "squeue --json:"),
        ("hang", "squeue --json: timed out after 0.5 s"),
    ],
)
def test_a_bad_squeue_on_the_bus_is_one_failed_collection_never_a_listing(
    mode: str, message: str
) -> None:
    runner = _runner(timeout=0.5)
    bus = CollectionBus(host="h")
    bus.add(SlurmJobsCollector(_settings(timeout_s=0.5), runner=runner), interval=3600, timeout=30)
    try:
        good = bus.collect_now("slurm-jobs")
        assert good.event.status == "ok"
        assert not good.stale
        assert any(isinstance(r, SystemRecord) for r in good.records)
        assert runner.env is not None
        runner.env["FAKE_SLURM_MODE"] = mode
        bad = bus.collect_now("slurm-jobs")
        assert bad.event.status == "error"
        assert bad.event.error is not None
        assert message in bad.event.error
        assert "\n" not in bad.event.error
        # the last good records come back marked stale: never a fresh, shorter listing
        assert bad.stale
        assert bad.event.stale
        assert bad.records == good.records
    finally:
        bus.stop()


def test_exit_status_lost_by_sacct_json_comes_from_its_text_output(ctx: CollectContext) -> None:
    collector = SlurmJobsCollector(_settings(), runner=_runner())
    failed = _jobs(collector.collect(ctx))["8"]
    assert (failed.state, failed.exit_status, failed.exit_signal) == ("failed", 3, None)
    assert ctx.problems == []


def test_exit_status_matched_by_id_when_the_times_differ(ctx: CollectContext) -> None:
    collector = SlurmJobsCollector(_settings(), runner=_runner(sacct_text="shifted"))
    failed = _jobs(collector.collect(ctx))["8"]
    assert (failed.state, failed.exit_status) == ("failed", 3)


def test_exit_status_query_failing_leaves_it_unknown(ctx: CollectContext) -> None:
    collector = SlurmJobsCollector(_settings(), runner=_runner(sacct_text="fail"))
    failed = _jobs(collector.collect(ctx))["8"]
    assert (failed.state, failed.exit_status) == ("failed", None)
    (problem,) = ctx.problems
    assert "JobID,Submit,ExitCode: exited with status 1" in str(problem)


def test_failed_sacct_is_a_partial_collection_with_a_complete_listing(ctx: CollectContext) -> None:
    collector = SlurmJobsCollector(_settings(), runner=_runner(sacct="fail"))
    records = collector.collect(ctx)
    assert sorted(_jobs(records)) == ["1", "2", "3", "4", "5", "6"]
    assert any(isinstance(r, SystemRecord) for r in records)
    (problem,) = ctx.problems
    assert "sacct --json" in str(problem)
    assert "Connection refused" in str(problem)


def test_accounting_window_starts_at_the_last_good_query(ctx: CollectContext) -> None:
    calls: list[list[str]] = []
    runner = _runner(sacct="fail")
    real_run = runner.run

    def spy(argv, **kw):  # type: ignore[no-untyped-def]
        calls.append(list(argv))
        return real_run(argv, **kw)

    runner.run = spy  # type: ignore[method-assign]
    collector = SlurmJobsCollector(_settings(sacct_lookback_s=600), runner=runner)
    collector.collect(ctx)
    collector.collect(ctx)  # the failed query did not move the window
    windows = [c[c.index("-S") + 1] for c in calls if "--json" in c and c[0].endswith("sacct")]
    assert windows == ["now-600seconds", "now-600seconds"]
    assert runner.env is not None
    runner.env["FAKE_SACCT_MODE"] = "json"
    collector.collect(ctx)
    collector.collect(ctx)
    windows = [c[c.index("-S") + 1] for c in calls if "--json" in c and c[0].endswith("sacct")]
    assert windows[2] == "now-600seconds"
    seconds = int(windows[3].removeprefix("now-").removesuffix("seconds"))
    assert 120 <= seconds < 600  # since the last good query, with a margin


def test_accounting_off_falls_back_to_the_jobcomp_log(ctx: CollectContext) -> None:
    collector = SlurmJobsCollector(_settings(), runner=_runner(sacct="disabled"))
    records = collector.collect(ctx)
    assert collector.accounting == "jobcomp"
    assert ctx.problems == []
    # sacct -c lists jobs 1-6 again: squeue's records win, no duplicates
    jobs = [r for r in records if isinstance(r, JobRecord)]
    assert sorted(j.job_id for j in jobs) == ["1", "2", "3", "4", "5", "6"]
    assert all(j.submit_ns is not None for j in jobs)


def test_jobcomp_records_when_squeue_no_longer_lists_the_job(ctx: CollectContext) -> None:
    collector = SlurmJobsCollector(_settings(accounting="jobcomp"), runner=_runner(squeue="empty"))
    records = collector.collect(ctx)
    jobs = _jobs(records)
    assert sorted(jobs) == ["1", "2", "3", "4", "5", "6"]
    assert {j.submit_ns for j in jobs.values()} == {None}  # sacct -c has no true submit time
    assert (jobs["3"].state, jobs["3"].exit_status) == ("failed", 3)
    mark = next(r for r in records if isinstance(r, SystemRecord))
    assert mark.jobs_total == 0


def test_no_accounting_runs_no_sacct(ctx: CollectContext) -> None:
    collector = SlurmJobsCollector(_settings(accounting="none"), runner=_runner(sacct="fail"))
    assert sorted(_jobs(collector.collect(ctx))) == ["1", "2", "3", "4", "5", "6"]
    assert ctx.problems == []


# --------------------------------------------------------- nodes, partitions


def test_nodes_take_slurms_cluster_name(ctx: CollectContext) -> None:
    (node,) = SlurmNodesCollector(_settings(), runner=_runner()).collect(ctx)
    assert isinstance(node, NodeRecord)
    assert (node.cluster, node.node, node.state) == ("fakecluster", "localhost", "idle")


def test_partitions_with_job_counts(ctx: CollectContext) -> None:
    records = SlurmPartitionsCollector(_settings(cluster="c"), runner=_runner()).collect(ctx)
    assert [(q.queue, q.jobs_total) for q in records if isinstance(q, QueueRecord)] == [
        ("debug", 0),
        ("long", 0),
    ]


def test_partitions_without_squeue_are_partial(ctx: CollectContext) -> None:
    records = SlurmPartitionsCollector(
        _settings(cluster="c"), runner=_runner(squeue="fail")
    ).collect(ctx)
    assert [q.queue for q in records if isinstance(q, QueueRecord)] == ["debug", "long"]
    assert all(isinstance(q, QueueRecord) and q.jobs_total is None for q in records)
    (problem,) = ctx.problems
    assert "squeue --json" in str(problem)


# ------------------------------------------------------------ commands, config


def test_commands_over_ssh() -> None:
    collector = SlurmJobsCollector(SlurmSettings(bin_dir="/opt/slurm/bin/", ssh_host="login1"))
    argv = collector._cmd.argv("squeue", "--json")
    assert argv == [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
        "login1",
        "/opt/slurm/bin/squeue --json",
    ]


def test_missing_binaries_folder(ctx: CollectContext) -> None:
    collector = SlurmNodesCollector(SlurmSettings(bin_dir="/nonexistent-slurm", cluster="c"))
    with pytest.raises(CollectError, match=r"/nonexistent-slurm/sinfo --json: command not found"):
        collector.collect(ctx)


def test_config_section(tmp_path: Path, ctx: CollectContext) -> None:
    assert load_config(env={}).collectors.slurm.enabled is False
    assert scheduler_collectors(load_config(env={})) == []
    path = tmp_path / "collectbus.toml"
    path.write_text(
        f'[collectors.slurm]\nenabled = true\ncluster = "hpc"\nbin_dir = "{FAKES}"\n'
        'timeout = "10s"\naccounting = "jobcomp"\nusers = ["alice"]\n'
        '[collectors.slurm.intervals]\njobs = "30s"\n'
    )
    runner = _runner()
    built = scheduler_collectors(load_config(path, env={}), runner=runner)
    timeout = 10.0 * SLURM_COMMANDS + PBS_TIMEOUT_MARGIN_S
    assert [(e.collector.name, e.tier, e.interval, e.timeout) for e in built] == [
        ("slurm-jobs", "inventory", 30.0, timeout),
        ("slurm-nodes", "inventory", 300.0, timeout),
        ("slurm-partitions", "inventory", 900.0, timeout),
        ("slurm-reservations", "inventory", 300.0, timeout),
    ]
    kinds = (
        SlurmJobsCollector,
        SlurmNodesCollector,
        SlurmPartitionsCollector,
        SlurmReservationsCollector,
    )
    for entry, kind in zip(built, kinds, strict=True):
        assert isinstance(entry.collector, kind)
        assert entry.collector._cmd.settings == _settings(
            cluster="hpc", timeout_s=10.0, accounting="jobcomp", users=("alice",)
        )
        assert entry.collector._cmd.runner is runner
    assert isinstance(built[0].collector, SlurmJobsCollector)
    assert built[0].collector.accounting == "jobcomp"
    # the given runner runs the commands: the fakes find their data through its environment
    (node,) = built[1].collector.collect(ctx)
    assert isinstance(node, NodeRecord)
    assert (node.cluster, node.node) == ("hpc", "localhost")
    (only_jobs,) = scheduler_collectors(load_config(path, env={}), entities={"jobs"})
    assert only_jobs.collector.name == "slurm-jobs"
    assert isinstance(only_jobs.collector, SlurmJobsCollector)
    assert isinstance(only_jobs.collector._cmd.runner, LocalRunner)
    assert only_jobs.collector._cmd.runner.timeout == 10.0
    path.write_text('[collectors.slurm]\naccounting = "maybe"\n')
    with pytest.raises(ConfigError, match=r"collectors\.slurm\.accounting"):
        load_config(path, env={})
    # The flat keys of earlier versions say where the setting went.
    path.write_text('[collectors.slurm]\njobs_interval = "30s"\n')
    with pytest.raises(
        ConfigError, match=r"collectors\.slurm.*\[collectors\.slurm\.intervals\] jobs"
    ):
        load_config(path, env={})
    path.write_text('[collectors.slurm]\nenabled = true\ntier = "hourly"\n')
    with pytest.raises(ConfigError, match=r"collectors\.slurm\.tier: unknown tier 'hourly'"):
        load_config(path, env={})


# ------------------------------------------------- one bad item, not the output


def _mutated(tmp_path: Path, name: str, edit: Callable[[Any], None]) -> LocalRunner:
    """A runner whose fakes print the recordings, ``name`` edited as JSON by ``edit``."""
    data = tmp_path / "slurm"
    shutil.copytree(DATA, data)
    doc = json.loads((data / name).read_bytes())
    edit(doc)
    (data / name).write_text(json.dumps(doc))
    env = {**os.environ, "FAKE_SLURM_DATA": str(data), "FAKE_SLURM_MODE": "ok"}
    env["FAKE_SACCT_MODE"] = "json"
    return LocalRunner(timeout=10.0, env=env)


def _squeue_job(doc: dict[str, Any], job_id: int) -> dict[str, Any]:
    job: dict[str, Any] = next(j for j in doc["jobs"] if j["job_id"] == job_id)
    return job


def test_a_job_that_cannot_be_built_is_refused_and_the_listing_is_partial(
    tmp_path: Path, ctx: CollectContext
) -> None:
    def edit(doc: dict[str, Any]) -> None:
        del _squeue_job(doc, 3)["job_state"]

    runner = _mutated(tmp_path, "squeue_json_22.05.8_after_jobs.json", edit)
    records = SlurmJobsCollector(_settings(), runner=runner).collect(ctx)
    jobs = _jobs(records)
    # job 3 is refused; the other squeue jobs and the finished ones from sacct are kept
    assert sorted(jobs) == ["1", "2", "4", "5", "6", "7", "8", "9_1", "9_2", "9_3"]
    (problem,) = ctx.problems
    message = str(problem)
    assert "\n" not in message
    assert "cluster testcluster: 1 jobs refused: job 3: missing key 'job_state'" in message
    assert str(FAKES / "squeue") in message
    details = dict(ctx.details)
    assert details["refused"] == "1"
    assert details["job_listing"] == "partial"  # job 3 is missing, not gone
    (mark,) = [r for r in records if isinstance(r, SystemRecord)]
    assert mark.jobs_total == 5


def test_a_finished_job_that_cannot_be_built_is_refused(
    tmp_path: Path, ctx: CollectContext
) -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["jobs"][0]["state"] = "COMPLETED"  # an object in Slurm's output

    runner = _mutated(tmp_path, "sacct_json_22.05.8.json", edit)
    jobs = _jobs(SlurmJobsCollector(_settings(), runner=runner).collect(ctx))
    assert "7" not in jobs
    assert {"8", "9_1", "9_2", "9_3"} <= set(jobs)
    (problem,) = ctx.problems
    assert "cluster testcluster: 1 finished jobs refused: job 7: expected an object" in str(problem)
    assert dict(ctx.details)["job_listing"] == "complete"  # squeue's listing was whole


def test_a_node_that_cannot_be_built_is_refused(tmp_path: Path, ctx: CollectContext) -> None:
    def edit(doc: dict[str, Any]) -> None:
        second = copy.deepcopy(doc["nodes"][0])
        second["name"] = "cn02"
        doc["nodes"][0]["cpus"] = "many"
        doc["nodes"].append(second)

    runner = _mutated(tmp_path, "sinfo_json_22.05.8.json", edit)
    records = SlurmNodesCollector(_settings(), runner=runner).collect(ctx)
    assert [r.node for r in records if isinstance(r, NodeRecord)] == ["cn02"]
    (problem,) = ctx.problems
    assert "cluster fakecluster: 1 nodes refused: node localhost: expected an integer" in str(
        problem
    )


def test_a_partition_without_a_name_is_refused(tmp_path: Path, ctx: CollectContext) -> None:
    data = tmp_path / "slurm"
    shutil.copytree(DATA, data)
    lines = (data / "scontrol_show_partition_o.txt").read_text().splitlines()
    lines[0] = lines[0].replace("PartitionName=debug ", "")
    (data / "scontrol_show_partition_o.txt").write_text("\n".join(lines) + "\n")
    env = {**os.environ, "FAKE_SLURM_DATA": str(data), "FAKE_SLURM_MODE": "ok"}
    records = SlurmPartitionsCollector(
        _settings(cluster="c"), runner=LocalRunner(timeout=10.0, env=env)
    ).collect(ctx)
    assert [q.queue for q in records if isinstance(q, QueueRecord)] == ["long"]
    (problem,) = ctx.problems
    assert "cluster c: 1 partitions refused: line 1: no PartitionName" in str(problem)


def test_values_out_of_range_are_named_by_job_and_field(
    tmp_path: Path, ctx: CollectContext
) -> None:
    def edit(doc: dict[str, Any]) -> None:
        _squeue_job(doc, 6)["time_limit"] = 2**62  # minutes: past int64 as seconds
        _squeue_job(doc, 2)["priority"] = 2**64

    runner = _mutated(tmp_path, "squeue_json_22.05.8_after_jobs.json", edit)
    jobs = _jobs(SlurmJobsCollector(_settings(), runner=runner).collect(ctx))
    assert jobs["6"].walltime_requested_seconds is None
    assert jobs["2"].priority is None
    details = dict(ctx.details)
    assert details["out_of_range"] == "2"
    assert details["out_of_range_fields"] == "job 2: priority,job 6: time_limit"
    assert ctx.problems == []  # a value out of range costs nothing else
    assert details["job_listing"] == "complete"
