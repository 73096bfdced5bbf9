"""The text parsers on recorded Slurm 22.05.8 output; expected values read off the files."""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from pathlib import Path

import pytest

from collectbus.collectors.slurm.parse import parse_squeue_json
from collectbus.collectors.slurm.text import (
    parse_jobcomp_filetxt,
    parse_keyvalue_lines,
    parse_pipe_table,
    parse_sacct_completion,
    parse_sacct_exit_codes,
    parse_scontrol_jobs,
    parse_scontrol_partitions,
    parse_squeue_pipe,
    with_job_counts,
)
from collectbus.errors import ParseError

DATA = Path(__file__).resolve().parents[3] / "data" / "slurm"
NS = 1_000_000_000
SUBMIT = 1795497562 * NS  # 2026-11-24T05:19:22, the recording machine was in UTC


def _read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_partitions_from_scontrol() -> None:
    debug, long = parse_scontrol_partitions(
        _read("scontrol_show_partition_o.txt"), cluster="c", observed_ns=1
    )
    assert (debug.queue, debug.enabled, debug.started) == ("debug", True, True)
    assert long.queue == "long"
    raw = json.loads(long.raw_json)
    assert raw["MaxTime"] == "2-00:00:00"
    assert raw["TotalCPUs"] == "2"
    assert raw["TRES"] == "cpu=2,mem=1000M,node=1,billing=2"
    assert debug.jobs_total is None  # counts come from squeue


def test_partition_states_map_to_enabled_and_started() -> None:
    lines = b"".join(
        f"PartitionName=p{s} State={s} Nodes=n1\n".encode()
        for s in ("UP", "DOWN", "DRAIN", "INACTIVE")
    )
    got = [
        (q.enabled, q.started) for q in parse_scontrol_partitions(lines, cluster="c", observed_ns=1)
    ]
    assert got == [(True, True), (True, False), (False, True), (False, False)]


def test_partition_job_counts_from_squeue() -> None:
    queues = parse_scontrol_partitions(
        _read("scontrol_show_partition_o.txt"), cluster="c", observed_ns=1
    )
    jobs = parse_squeue_json(_read("squeue_json_22.05.8_pending.json"), cluster="c", observed_ns=1)
    debug, long = with_job_counts(queues, jobs)
    assert (debug.jobs_total, debug.jobs_queued, debug.jobs_held, debug.jobs_running) == (
        6,
        5,
        1,
        0,
    )
    assert debug.state_counts == (("PENDING", 6),)
    assert (long.jobs_total, long.state_counts) == (0, ())
    finished = parse_squeue_json(
        _read("squeue_json_22.05.8_after_jobs.json"), cluster="c", observed_ns=1
    )
    assert with_job_counts(queues, finished)[0].jobs_total == 0  # finished jobs do not count


def test_scontrol_jobs() -> None:
    jobs = {
        j.job_id: j
        for j in parse_scontrol_jobs(_read("scontrol_show_job_o.txt"), cluster="c", observed_ns=1)
    }
    assert sorted(jobs) == ["1", "2", "3", "4", "5", "6"]
    failed = jobs["3"]
    assert (failed.state, failed.substate, failed.exit_status) == ("failed", "NonZeroExitCode", 3)
    assert failed.submit_ns == SUBMIT
    assert failed.start_ns == SUBMIT + 7 * NS  # 05:19:29
    assert failed.end_ns == SUBMIT + 12 * NS
    assert failed.exec_hosts == ("localhost",)
    assert failed.account is None  # Account=(null)
    held = jobs["5"]
    assert held.eligible_ns == SUBMIT + 29 * NS  # EligibleTime=05:19:51, when released
    timeout = jobs["6"]
    assert (timeout.state, timeout.walltime_requested_seconds, timeout.walltime_used_seconds) == (
        "timeout",
        60,
        75,
    )
    assert jobs["4"].cpus_requested == 2


def test_jobcomp_log() -> None:
    jobs = parse_jobcomp_filetxt(_read("jobcomp_filetxt.log"), cluster="c", observed_ns=1)
    assert [j.job_id for j in jobs] == ["1", "2", "3", "4", "5", "6"]
    assert all(j.submit_ns == SUBMIT for j in jobs)  # the log's own SubmitTime is right
    assert [j.state for j in jobs] == [
        "completed",
        "completed",
        "failed",
        "completed",
        "completed",
        "timeout",
    ]
    assert jobs[2].exit_status == 3  # ExitCode=3:0
    assert jobs[0].mem_requested_bytes == 1000 << 20  # Tres=...mem=1000M
    assert jobs[0].user == "root"  # UserId=root(0)


def test_sacct_completion_has_no_submit_time() -> None:
    jobs = parse_sacct_completion(_read("sacct_completion_all.psv"), cluster="c", observed_ns=1)
    assert [j.job_id for j in jobs] == ["1", "2", "3", "4", "5", "6"]
    for job in jobs:
        assert job.submit_ns is None  # its Submit column repeats Start
        assert json.loads(job.raw_json)["Submit"] == json.loads(job.raw_json)["Start"]
    failed = jobs[2]
    assert (failed.state, failed.exit_status) == ("failed", 3)  # ExitCode 3:0 (DerivedExitCode 0:0)
    assert failed.eligible_ns == SUBMIT
    assert failed.start_ns == SUBMIT + 7 * NS
    held = jobs[4]
    assert held.eligible_ns == SUBMIT + 29 * NS
    timeout = jobs[5]
    assert (timeout.state, timeout.walltime_requested_seconds, timeout.walltime_used_seconds) == (
        "timeout",
        60,
        75,
    )
    assert jobs[3].cpus_requested == 2


def test_sacct_exit_codes_by_id_and_submit_time() -> None:
    text = b"JobID|Submit|ExitCode\n2|2026-11-24T05:19:22|3:0\n9_1|1795497736|0:0\n6|2026-11-24T05:19:22|0:15\n"
    codes = parse_sacct_exit_codes(text)
    assert codes == {
        ("2", SUBMIT): (3, None),
        ("9_1", 1795497736 * NS): (0, None),
        ("6", SUBMIT): (None, 15),
    }
    with pytest.raises(ParseError, match=r"^sacct -P -o JobID,Submit,ExitCode:2: missing column"):
        parse_sacct_exit_codes(b"JobID|Submit\n2|2026-11-24T05:19:22\n")


def test_squeue_pipe_format() -> None:
    jobs = parse_squeue_pipe(_read("squeue_format_pipe.txt"), cluster="c", observed_ns=1)
    assert [j.job_id for j in jobs] == ["1", "2", "4", "5", "3", "6"]
    timeout = jobs[5]
    assert (timeout.state, timeout.substate) == ("timeout", "TimeLimit")
    assert timeout.walltime_requested_seconds == 60  # TIME_LIMIT 1:00
    assert timeout.walltime_used_seconds == 75  # TIME 1:15
    assert jobs[0].submit_ns == SUBMIT
    assert jobs[0].account is None  # (null)


def test_local_time_zone_is_applied() -> None:
    plus_one = timezone(timedelta(hours=1))
    (job, *_) = parse_jobcomp_filetxt(
        _read("jobcomp_filetxt.log"), cluster="c", observed_ns=1, tz=plus_one
    )
    assert job.submit_ns == SUBMIT - 3600 * NS


def test_epoch_times_when_slurm_time_format_is_seconds() -> None:
    text = b"JobID|State|Eligible|Start|End|ExitCode\n7|COMPLETED|1795497736|1795497738|1795497741|0:0\n"
    (job,) = parse_sacct_completion(text, cluster="c", observed_ns=1)
    assert (job.eligible_ns, job.start_ns, job.end_ns) == (
        1795497736 * NS,
        1795497738 * NS,
        1795497741 * NS,
    )


def test_values_with_blanks_in_keyvalue_lines() -> None:
    (node,) = parse_keyvalue_lines(_read("scontrol_show_node_o.txt"), "scontrol show node -o")
    assert node["OS"] == "Linux 6.18.44-fc-v669 #1 SMP PREEMPT_DYNAMIC @0"
    assert node["CfgTRES"] == "cpu=2,mem=1000M,billing=2"
    assert node["AllocTRES"] == ""
    assert node["Partitions"] == "debug,long"


@pytest.mark.parametrize(
    ("parser", "data", "message"),
    [
        (
            parse_keyvalue_lines,
            b"PartitionName=a\nno key here\n",
            r"^src:2: not a line of Key=Value words",
        ),
        (parse_pipe_table, b"A|B\n1|2\n1|2|3\n", r"^src:3: 3 fields where the header has 2"),
        (parse_keyvalue_lines, b"A=1\n\xff\n", r"^src:2: not UTF-8"),
    ],
)
def test_malformed_text_names_source_and_line(parser, data: bytes, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ParseError, match=message):
        parser(data, "src")


def test_sacct_completion_without_state_column() -> None:
    with pytest.raises(ParseError, match=r"^sacct -c -P:2: missing column 'State'"):
        parse_sacct_completion(b"JobID|Start\n1|2026-11-24T05:19:22\n", cluster="c", observed_ns=1)


def test_bad_time_names_the_line() -> None:
    with pytest.raises(ParseError, match=r"^jobcomp log:1: "):
        parse_jobcomp_filetxt(
            b"JobId=1 JobState=COMPLETED StartTime=yesterday\n", cluster="c", observed_ns=1
        )
