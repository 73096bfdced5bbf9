"""The JSON parsers on recorded Slurm 22.05.8 output; expected values read off the files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collectbus.collectors.slurm.filters import filter_jobs
from collectbus.collectors.slurm.parse import (
    parse_sacct_json,
    parse_sinfo_json,
    parse_squeue_json,
)
from collectbus.errors import ParseError

DATA = Path(__file__).resolve().parents[3] / "data" / "slurm"
NS = 1_000_000_000
OBSERVED = 1_795_497_700 * NS
MIB = 1 << 20


def _read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def _by_id(jobs: list, key: str = "job_id") -> dict:
    return {getattr(j, key): j for j in jobs}


# ------------------------------------------------------------------ squeue


def test_squeue_pending_jobs_and_the_held_one() -> None:
    jobs = parse_squeue_json(
        _read("squeue_json_22.05.8_pending.json"), cluster=None, observed_ns=OBSERVED
    )
    assert [j.job_id for j in jobs] == ["1", "2", "3", "4", "5", "6"]
    first = jobs[0]
    assert first.cluster == "testcluster"  # the job's own "cluster"
    assert first.scheduler == "slurm"
    assert (first.state, first.native_state, first.substate) == ("queued", "PENDING", None)
    assert first.name == "short1"
    assert first.user == "root"
    assert first.account == "root"
    assert first.queue == "debug"
    assert first.priority == 4294901759
    assert first.submit_ns == 1795497827 * NS
    assert first.eligible_ns == 1795497827 * NS
    assert first.start_ns is None
    assert first.end_ns is None
    assert first.exit_status is None
    assert first.exit_signal is None
    assert first.cpus_requested == 1
    assert first.nodes_requested == 1
    assert first.mem_requested_bytes == 1000 * MIB  # tres_req_str mem=1000M
    assert first.walltime_requested_seconds is None  # time_limit null: unlimited
    assert first.walltime_used_seconds is None
    assert first.exec_hosts == ()
    assert jobs[1].substate == "Priority"
    held = jobs[4]
    assert (held.state, held.native_state, held.substate) == ("held", "PENDING", "JobHeldUser")
    assert held.eligible_ns is None  # eligible_time 0 while held
    assert held.priority == 0
    assert jobs[3].cpus_requested == 2  # "queued": -c 2
    assert jobs[5].walltime_requested_seconds == 60  # "tolong": -t 1


def test_squeue_finished_jobs_exit_codes_and_times() -> None:
    jobs = _by_id(
        parse_squeue_json(
            _read("squeue_json_22.05.8_after_jobs.json"), cluster="site", observed_ns=OBSERVED
        )
    )
    ok = jobs["1"]
    assert ok.cluster == "site"
    assert (ok.state, ok.exit_status, ok.exit_signal) == ("completed", 0, None)
    assert (ok.submit_ns, ok.start_ns, ok.end_ns) == (
        1795497562 * NS,
        1795497563 * NS,
        1795497568 * NS,
    )
    assert ok.walltime_used_seconds == 5
    assert ok.exec_hosts == ("localhost",)
    failed = jobs["3"]
    # exit_code 768 is the raw wait status of exit 3
    assert (failed.state, failed.native_state, failed.substate) == (
        "failed",
        "FAILED",
        "NonZeroExitCode",
    )
    assert (failed.exit_status, failed.exit_signal) == (3, None)
    timeout = jobs["6"]
    # exit_code 15: the SIGTERM Slurm sent at its one-minute limit, after
    # accounting recorded the job's 0:0, which is what is stored
    assert (timeout.state, timeout.substate) == ("timeout", "TimeLimit")
    assert (timeout.exit_status, timeout.exit_signal) == (0, None)
    assert timeout.walltime_requested_seconds == 60
    assert timeout.walltime_used_seconds == 75  # 1795497680 - 1795497605
    held = jobs["5"]
    # held until released: eligible 29 s after submission, started at 1795497605
    assert held.eligible_ns - held.submit_ns == 29 * NS
    assert held.start_ns - held.submit_ns == 43 * NS
    raw = json.loads(held.raw_json)
    assert raw["job_id"] == 5
    assert raw["state_reason"] == "None"


def test_filter_jobs_by_user_state_and_id() -> None:
    jobs = parse_squeue_json(
        _read("squeue_json_22.05.8_pending.json"), cluster=None, observed_ns=OBSERVED
    )
    assert [j.job_id for j in filter_jobs(jobs, states=["held"])] == ["5"]
    assert len(filter_jobs(jobs, states=["PENDING"])) == 6
    assert filter_jobs(jobs, users=["nobody"]) == []
    assert len(filter_jobs(jobs, users=["root"])) == 6
    assert [j.job_id for j in filter_jobs(jobs, job_ids=["2", "4"])] == ["2", "4"]
    assert filter_jobs(jobs) == jobs


# ------------------------------------------------------------------- sinfo


def test_sinfo_node() -> None:
    (node,) = parse_sinfo_json(_read("sinfo_json_22.05.8.json"), cluster="c", observed_ns=OBSERVED)
    assert node.node == "localhost"
    assert (node.state, node.native_state) == ("idle", "IDLE")
    assert node.partitions == ("debug", "long")
    assert (node.cpus_total, node.cpus_allocated) == (2, 0)
    assert node.mem_total_bytes == 1000 * MIB  # real_memory, MB
    assert node.mem_allocated_bytes == 0
    assert node.gpus_total is None
    assert node.comment is None  # reason and comment are ""
    assert json.loads(node.raw_json)["slurmd_version"] == "22.05.8"


def test_sinfo_drained_node_state_from_flags() -> None:
    doc = json.loads(_read("sinfo_json_22.05.8.json"))
    doc["nodes"][0]["state_flags"] = ["DRAIN"]
    doc["nodes"][0]["reason"] = "disk swap"
    (node,) = parse_sinfo_json(json.dumps(doc).encode(), cluster="c", observed_ns=OBSERVED)
    assert (node.state, node.native_state, node.comment) == ("drained", "IDLE+DRAIN", "disk swap")


# ------------------------------------------------------------------- sacct


def test_sacct_completed_failed_and_array() -> None:
    jobs = parse_sacct_json(_read("sacct_json_22.05.8.json"), cluster=None, observed_ns=OBSERVED)
    assert [j.job_id for j in jobs] == ["7", "8", "9_3", "9_1", "9_2"]
    ok = jobs[0]
    assert ok.cluster == "testcluster"
    assert (ok.state, ok.exit_status, ok.exit_signal) == ("completed", 0, None)
    assert ok.submit_ns == 1795497736 * NS
    assert ok.eligible_ns == 1795497736 * NS
    assert (ok.start_ns, ok.end_ns) == (1795497738 * NS, 1795497741 * NS)
    assert ok.walltime_used_seconds == 3
    assert ok.cpus_requested == 1
    assert ok.nodes_requested == 1
    assert ok.mem_requested_bytes == 1000 * MIB
    assert ok.exec_hosts == ("localhost",)
    failed = jobs[1]
    # 22.05 says SUCCESS/0 for a job that exited 3: unknown, not 0
    assert (failed.state, failed.exit_status, failed.exit_signal) == ("failed", None, None)
    tasks = jobs[2:]
    assert {t.array_parent for t in tasks} == {"9"}
    assert [t.name for t in tasks] == ["arr"] * 3
    task1 = _by_id(tasks)["9_1"]
    assert task1.start_ns == 1795497742 * NS
    assert task1.eligible_ns - task1.submit_ns == 2 * NS  # array eligible at 1795497738


def test_sacct_reused_ids_differ_by_submit_time() -> None:
    jobs = parse_sacct_json(
        _read("sacct_json_22.05.8_smoke.json"), cluster="c", observed_ns=OBSERVED
    )
    assert len(jobs) == 16
    ones = [j for j in jobs if j.job_id == "1"]
    assert sorted(j.submit_ns for j in ones) == [1795497827 * NS, 1795498001 * NS]
    assert len({(j.cluster, j.job_id, j.submit_ns) for j in jobs}) == 16
    states = {(j.job_id, j.submit_ns): (j.state, j.substate) for j in jobs}
    assert states[("5", 1795497827 * NS)] == ("cancelled", "JobHeldUser")
    assert states[("4", 1795498001 * NS)] == ("running", None)
    assert states[("6", 1795498001 * NS)] == ("queued", None)
    never_ran = next(j for j in jobs if j.job_id == "6" and j.submit_ns == 1795497827 * NS)
    assert never_ran.start_ns is None
    assert never_ran.exec_hosts == ()
    assert never_ran.walltime_requested_seconds == 60


def test_sacct_nothing_found_is_no_job() -> None:
    data = _read("sacct_json_22.05.8_nothing_found.json")
    assert b"Nothing found with query" in data
    assert parse_sacct_json(data, cluster="c", observed_ns=OBSERVED) == []


def test_sacct_signal_is_decoded() -> None:
    doc = json.loads(_read("sacct_json_22.05.8.json"))
    job = doc["jobs"][1]
    job["exit_code"] = {
        "status": "SIGNALED",
        "return_code": None,
        "signal": {"signal_id": 9, "name": "Killed"},
    }
    doc["jobs"] = [job]
    (record,) = parse_sacct_json(json.dumps(doc).encode(), cluster="c", observed_ns=OBSERVED)
    assert (record.exit_status, record.exit_signal) == (None, 9)


# ------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b'{"meta": {}, "jobs": [{"job_id": 1,',
            r"squeue --json:1: invalid JSON at column \d+ \(byte \d+\)",
        ),
        (b"", r"squeue --json:1: invalid JSON at column 1 \(byte 0\)"),
        (b"[1, 2]", r"squeue --json: expected a JSON object, got list"),
        (b'{"jobs": {}}', r"squeue --json: no 'jobs' list"),
        (b'{"jobs": [3]}', r"squeue --json: jobs\[0\] is not an object"),
        (b'{"jobs": [{"job_id": "x", "job_state": "PENDING"}]}', r"squeue --json: jobs\[0\]: "),
        (b'{"jobs": [{"job_id": 1}]}', r"squeue --json: job 1: missing key 'job_state'"),
        (
            b'{"errors": [{"error": "Invalid user"}], "jobs": []}',
            r"Slurm reported errors: .*Invalid user",
        ),
        (b"\xff\xfe", r"squeue --json"),
    ],
)
def test_broken_squeue_json_is_a_parse_error_naming_the_source(data: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message) as info:
        parse_squeue_json(data, cluster=None, observed_ns=OBSERVED)
    assert "\n" not in str(info.value)


def test_truncated_recording_names_line_and_column() -> None:
    data = _read("squeue_json_22.05.8_after_jobs.json")[:5000]
    with pytest.raises(ParseError) as info:
        parse_squeue_json(data, source="squeue --json", cluster=None, observed_ns=OBSERVED)
    line = data.count(b"\n") + 1
    assert info.value.line == line
    assert str(info.value).startswith(f"squeue --json:{line}: invalid JSON")


def test_truncated_sinfo_and_sacct() -> None:
    with pytest.raises(ParseError, match=r"^sinfo --json:\d+: invalid JSON"):
        parse_sinfo_json(_read("sinfo_json_22.05.8.json")[:700], cluster="c", observed_ns=0)
    with pytest.raises(ParseError, match=r"^sacct --json:\d+: invalid JSON"):
        parse_sacct_json(_read("sacct_json_22.05.8.json")[:-3], cluster="c", observed_ns=0)


def test_a_pending_jobs_estimated_start_is_not_a_start() -> None:
    payload = json.loads((DATA / "squeue_json_22.05.8_pending.json").read_text())
    # squeue prints the scheduler's estimate for a pending job (here: a year on).
    payload["jobs"][0]["start_time"] = payload["jobs"][0]["submit_time"] + 365 * 86400
    (job, *_) = parse_squeue_json(
        json.dumps(payload).encode(), source="squeue --json", cluster="c", observed_ns=1
    )
    assert job.state == "queued"
    assert job.start_ns is None
    assert job.walltime_used_seconds is None


def test_an_item_that_cannot_be_built_is_refused_by_name_and_the_rest_kept() -> None:
    doc = json.loads(_read("squeue_json_22.05.8_after_jobs.json"))
    doc["jobs"][2]["exit_code"] = "seven"  # job 3
    doc["jobs"][4]["job_id"] = None  # job 5: no id to name it by
    del doc["jobs"][4]["job_state"]
    refused: list[str] = []
    jobs = parse_squeue_json(
        json.dumps(doc).encode(), cluster="c", observed_ns=OBSERVED, refused=refused
    )
    assert [j.job_id for j in jobs] == ["1", "2", "4", "6"]
    assert refused == [
        "job 3: expected an integer, got 'seven'",
        "jobs[4]: missing key 'job_state'",
    ]
    with pytest.raises(ParseError, match=r"squeue --json: job 3: expected an integer"):
        parse_squeue_json(json.dumps(doc).encode(), cluster="c", observed_ns=OBSERVED)


def test_sacct_values_out_of_range_are_named_by_field() -> None:
    doc = json.loads(_read("sacct_json_22.05.8.json"))
    doc["jobs"][0]["time"]["limit"] = 2**64
    doc["jobs"][0]["time"]["start"] = 2**62  # seconds: past int64 as nanoseconds
    replaced: list[str] = []
    jobs = parse_sacct_json(
        json.dumps(doc).encode(), cluster="c", observed_ns=OBSERVED, replaced=replaced
    )
    assert jobs[0].walltime_requested_seconds is None
    assert jobs[0].start_ns is None
    assert replaced == ["job 7: time.start", "job 7: time.limit"]
