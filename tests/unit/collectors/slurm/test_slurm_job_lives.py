"""Each kind of job life as the parsers and the jobs collector read it, from
recordings of a real Slurm 22.05 (tests/data/slurm/README.md): one rule for
squeue and sacct alike (see the Slurm README, "Job lives")."""

from __future__ import annotations

import os
from pathlib import Path

from collectbus.collectors.base import CollectContext
from collectbus.collectors.run import LocalRunner
from collectbus.collectors.slurm.collector import SlurmJobsCollector, SlurmSettings
from collectbus.collectors.slurm.parse import (
    is_array_remainder,
    parse_sacct_json,
    parse_squeue_json,
    raw_job_id,
)
from collectbus.records import JobRecord

TESTS = Path(__file__).resolve().parents[3]
DATA = TESTS / "data" / "slurm"
FAKES = TESTS / "fakes" / "slurm"
NS = 1_000_000_000
NOW = 1796670400 * NS


def _squeue(name: str) -> dict[str, JobRecord]:
    jobs = parse_squeue_json((DATA / name).read_bytes(), cluster="c", observed_ns=NOW)
    return {j.job_id: j for j in jobs}


def _sacct(name: str) -> dict[tuple[str, int | None], JobRecord]:
    jobs = parse_sacct_json((DATA / name).read_bytes(), cluster="c", observed_ns=NOW)
    return {(j.job_id, j.submit_ns): j for j in jobs}


def _ns(seconds: int) -> int:
    return seconds * NS


def test_a_job_cancelled_while_pending_never_started_in_squeue() -> None:
    job = _squeue("squeue_json_22.05_job_lives_running.json")["13"]
    raw_start = 1796670306  # squeue gives it start_time = end_time
    assert (job.native_state, job.substate) == ("CANCELLED", "BeginTime")
    assert (job.start_ns, job.end_ns) == (None, _ns(raw_start))
    assert job.walltime_used_seconds is None
    assert job.eligible_ns == _ns(1796670902)  # its --begin, never reached
    assert (job.exit_status, job.exit_signal) == (0, None)


def test_a_job_cancelled_while_pending_never_started_in_sacct() -> None:
    jobs = _sacct("sacct_json_22.05_array_task_raw_id.json")
    (job,) = [j for (job_id, _), j in jobs.items() if job_id == "13"]
    assert (job.state, job.start_ns, job.end_ns) == ("cancelled", None, _ns(1796670306))
    assert job.walltime_used_seconds is None
    assert (job.exit_status, job.exit_signal) == (0, None)


def test_a_live_jobs_projected_end_is_no_end() -> None:
    jobs = _squeue("squeue_json_22.05_job_lives_running.json")
    running = jobs["15"]
    assert running.native_state == "RUNNING"
    assert (running.start_ns, running.end_ns) == (_ns(1796670308), None)
    assert running.walltime_used_seconds == (NOW - _ns(1796670308)) // NS
    pending = jobs["19"]
    assert (pending.state, pending.start_ns, pending.end_ns) == ("queued", None, None)


def test_exit_codes_one_rule_from_squeue() -> None:
    jobs = _squeue("squeue_json_22.05_job_lives_ended.json")
    # raw wait statuses: 9 is SIGKILL, 35072 exit 137, 512 exit 2; 15 is the
    # SIGTERM Slurm sent after accounting recorded the ended job as 0:0
    assert (jobs["17"].exit_status, jobs["17"].exit_signal) == (None, 9)
    assert (jobs["18"].exit_status, jobs["18"].exit_signal) == (137, None)
    assert (jobs["16_3"].exit_status, jobs["16_3"].exit_signal) == (2, None)
    assert (jobs["14"].native_state, jobs["14"].exit_status, jobs["14"].exit_signal) == (
        "CANCELLED",
        0,
        None,
    )
    assert (jobs["19"].native_state, jobs["19"].exit_status, jobs["19"].exit_signal) == (
        "TIMEOUT",
        0,
        None,
    )
    assert (jobs["12"].state, jobs["12"].exit_status) == ("queued", None)


def test_exit_codes_one_rule_from_sacct() -> None:
    jobs = {job_id: j for (job_id, _), j in _sacct("sacct_D_json_22.05_job_lives.json").items()}
    assert (jobs["17"].exit_status, jobs["17"].exit_signal) == (None, 9)
    assert (jobs["14"].exit_status, jobs["14"].exit_signal) == (0, None)
    assert (jobs["19"].state, jobs["19"].exit_status, jobs["19"].exit_signal) == (
        "timeout",
        0,
        None,
    )
    # sacct --json of 22.05 reports SUCCESS/0 for exit 137: not known here
    # (the collector asks sacct's text output)
    assert (jobs["18"].state, jobs["18"].exit_status, jobs["18"].exit_signal) == (
        "failed",
        None,
        None,
    )


def test_the_same_ended_job_reads_the_same_from_squeue_and_sacct() -> None:
    live = _squeue("squeue_json_22.05_job_lives_ended.json")
    accounted = _sacct("sacct_D_json_22.05_job_lives.json")
    compared = 0
    for (job_id, submit_ns), job in accounted.items():
        if job_id not in live or (job.state, job.exit_status) == ("failed", None):
            continue  # the exit status sacct --json loses (the collector asks its text)
        seen = live[job_id]
        fields = ("state", "submit_ns", "eligible_ns", "start_ns", "end_ns")
        fields += ("exit_status", "exit_signal")
        assert [getattr(seen, f) for f in fields] == [getattr(job, f) for f in fields], job_id
        assert seen.submit_ns == submit_ns
        compared += 1
    assert compared >= 12


def test_a_requeued_run_ends_in_sacct_and_the_next_run_is_another_job() -> None:
    accounted = _sacct("sacct_json_22.05_requeued.json")
    run = accounted[("24", _ns(1796670518))]
    assert (run.state, run.native_state) == ("cancelled", "REQUEUED")
    assert (run.start_ns, run.end_ns) == (_ns(1796670519), _ns(1796670521))
    assert (run.exit_status, run.exit_signal) == (0, None)
    again = _squeue("squeue_json_22.05_requeued.json")["24"]
    # Slurm gave the requeued job a new submit time: another job
    assert (again.state, again.submit_ns) == ("queued", _ns(1796670521))
    assert (again.start_ns, again.end_ns) == (None, None)


def _collect(squeue: str, sacct: str) -> dict[str, list[JobRecord]]:
    env = {
        **os.environ,
        "FAKE_SLURM_DATA": str(DATA),
        "FAKE_SQUEUE_FILE": str(DATA / squeue),
        "FAKE_SACCT_FILE": str(DATA / sacct),
    }
    collector = SlurmJobsCollector(
        SlurmSettings(bin_dir=str(FAKES), cluster="c"), runner=LocalRunner(timeout=10, env=env)
    )
    out: dict[str, list[JobRecord]] = {}
    for record in collector.collect(CollectContext(host="h")):
        if isinstance(record, JobRecord):
            out.setdefault(record.job_id, []).append(record)
    return out


def test_an_array_task_is_one_job_though_sacct_names_it_by_its_raw_id() -> None:
    # sacct, a second after task 16_2 ended: job 21 named "allocation", no array ids
    (transient,) = [
        j for (job_id, _), j in _sacct("sacct_json_22.05_array_task_raw_id.json").items()
        if job_id == "21"
    ]  # fmt: skip
    assert (transient.name, transient.queue, transient.array_parent) == ("allocation", None, None)
    task = _squeue("squeue_json_22.05_array_task_ended.json")["16_2"]
    assert raw_job_id(task) == raw_job_id(transient) == "21"
    jobs = _collect(
        "squeue_json_22.05_array_task_ended.json", "sacct_json_22.05_array_task_raw_id.json"
    )
    assert "21" not in jobs
    assert [j.state for j in jobs["16_2"]] == ["completed"]
    # the pending remainder 16_[3-5%2] is listed by squeue, and is no job
    listed = _squeue("squeue_json_22.05_job_lives_running.json")
    assert [j for j in listed if is_array_remainder(j)] == ["16_[3-5%2]"]
    jobs = _collect("squeue_json_22.05_job_lives_running.json", "sacct_json_22.05_requeued.json")
    assert not [j for j in jobs if is_array_remainder(j)]
    assert "16_2" in jobs


def test_the_collector_asks_accounting_for_requeued_runs() -> None:
    jobs = _collect("squeue_json_22.05_requeued.json", "sacct_json_22.05_requeued.json")
    runs = {j.submit_ns: j.state for j in jobs["24"]}
    assert runs == {_ns(1796670518): "cancelled", _ns(1796670521): "queued"}
