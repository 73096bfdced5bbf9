"""The pure PBS parsers on the recorded outputs; every expected value was read off the files.

Zones: Aurora's server runs in America/Chicago (its epoch ``history_timestamp``
equals its ``mtime`` read there), MetaCentrum's in Europe/Prague (its header
``timestamp`` is 14 s after the job's ``ctime`` read there).
"""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collectbus.collectors.pbs.parse import (
    parse_pbsnodes,
    parse_qstat_jobs,
    parse_qstat_queues,
    parse_qstat_server,
)
from collectbus.records import JOB_STATES, JobRecord

DATA = Path(__file__).resolve().parents[3] / "data" / "pbs"
NS = 1_000_000_000
CHICAGO = ZoneInfo("America/Chicago")
AURORA = "aurora-pbs-0001.hostmgmt.cm.aurora.alcf.anl.gov"


def _jobs(name: str, zone: ZoneInfo) -> dict[str, JobRecord]:
    parsed = parse_qstat_jobs(
        (DATA / name).read_bytes(), cluster="test", zone=zone, observed_ns=123
    )
    assert parsed.complete
    assert parsed.problem_count == 0, parsed.problems
    return {r.job_id.split(".")[0]: r for r in parsed.records}


def test_a_running_job_with_exec_host_and_vnode() -> None:
    jobs = _jobs("qstat_fx_json__metacentrum_running_job.json", ZoneInfo("Europe/Prague"))
    job = jobs["12860476"]
    assert job.job_id == "12860476.meta-pbs.metacentrum.cz"
    assert (job.state, job.native_state, job.substate) == ("running", "R", "41")
    assert job.submit_ns == (1664911414 - 14) * NS  # ctime 21:23:20 CEST; header 14 s later
    assert job.eligible_ns == job.submit_ns  # etime equals ctime in the file
    assert job.start_ns == job.submit_ns + 13 * NS  # stime 21:23:33
    assert job.end_ns is None
    assert job.exec_hosts == ("charon24", "charon21")
    assert job.exec_vnode == "(charon24:ncpus=2:mem=4194304kb)+(charon21:ncpus=2:mem=4194304kb)"
    # Resource_List.mem "8gb" = the file's own PBS_RESC_TOTAL_MEM 8589934592.
    assert job.mem_requested_bytes == 8589934592
    assert (job.nodes_requested, job.cpus_requested, job.gpus_requested) == (2, 4, None)
    assert job.walltime_requested_seconds == 60  # = PBS_RESC_TOTAL_WALLTIME
    assert job.eligible_seconds == 0
    assert (job.user, job.queue, job.name, job.priority) == ("user45", "charon_2h", "swrap_01", 0)
    assert (job.cluster, job.scheduler, job.observed_ns) == ("test", "pbs", 123)
    assert '"Job_Name":"swrap_01"' in job.raw_json


def test_finished_jobs_timeout_and_completed() -> None:
    jobs = _jobs("qstat_fx_json__alcf_aurora_pbs_monitor_head.json", CHICAGO)
    timeout = jobs["6617175"]
    assert (timeout.state, timeout.native_state, timeout.substate) == ("timeout", "F", "93")
    assert (timeout.exit_status, timeout.exit_signal) == (-29, None)
    # obittime "Wed Jul 23 21:37:59 2025" CDT is the file's history_timestamp 1753324679.
    assert timeout.end_ns == 1753324679 * NS
    # stime "Wed Jul 23 15:35:36 2025": 6 h 2 min 23 s before obittime.
    assert timeout.start_ns == (1753324679 - 21743) * NS
    assert timeout.submit_ns == (1753324679 - 294692) * NS  # ctime Sun Jul 20 11:46:27
    assert timeout.eligible_seconds == 24 * 3600 + 46 * 60  # "24:46:00", past 24 h
    assert timeout.walltime_requested_seconds == 6 * 3600
    assert timeout.walltime_used_seconds == 6 * 3600 + 84  # "06:01:24"
    assert timeout.cpu_used_seconds == 45682 * 3600 + 59 * 60 + 56
    assert timeout.mem_used_bytes == 151384560 * 1024
    assert len(timeout.exec_hosts) == 40 == timeout.nodes_requested
    assert timeout.exec_hosts[:2] == ("x4618c0s0b0n0", "x4618c0s1b0n0")
    assert (timeout.cpus_requested, timeout.account) == (8320, "TwinBlood")
    done = jobs["6631289"]
    assert (done.state, done.exit_status, done.exit_signal) == ("completed", 0, None)
    assert done.end_ns == 1753324407 * NS  # its history_timestamp
    held = jobs["4905472"]
    assert (held.state, held.substate, held.end_ns) == ("held", "20", None)
    assert held.eligible_seconds == 20 * 3600 + 50 * 60 + 50


def test_deleted_queued_and_held_jobs() -> None:
    jobs = _jobs("qstat_fx_json__alcf_aurora_pbs_monitor_567e020.json", CHICAGO)
    assert len(jobs) == 8
    deleted = jobs["4846771"]
    assert (deleted.state, deleted.substate, deleted.exit_status) == ("cancelled", "91", None)
    assert deleted.start_ns is None  # deleted before it ran: no stime
    assert deleted.end_ns == 1752706056 * NS  # no obittime: its history_timestamp
    assert deleted.eligible_seconds == 1470 * 3600 + 29 * 60 + 27
    assert jobs["4683812"].state == "queued"
    held = jobs["4345644"]
    assert held.state == "held"
    assert held.eligible_seconds == 2090 * 3600 + 6 * 60 + 18  # 87 days
    assert held.comment == "job held, too many failed attempts to run"
    assert {r.state for r in jobs.values()} <= set(JOB_STATES)


def test_an_openpbs_held_job_in_utc() -> None:
    jobs = _jobs("qstat_fx_json__buildtest_openpbs_container_held_job.json", ZoneInfo("UTC"))
    held = jobs["157"]
    assert (held.state, held.substate, held.name) == ("held", "20", "pbs_hold_job")
    assert held.submit_ns == 1629501248 * NS  # "Fri Aug 20 23:14:08 2021" UTC
    assert held.eligible_seconds is None  # the server has eligible_time off


def test_queues_with_state_counts() -> None:
    derecho = parse_qstat_queues(
        (DATA / "qstat_Qf_json__ncar_derecho.json").read_bytes(), cluster="c", observed_ns=1
    )
    assert len(derecho.records) == 14
    cpu = next(q for q in derecho.records if q.queue == "cpu")
    assert (cpu.enabled, cpu.started, cpu.jobs_total) == (True, True, 1041)
    assert (cpu.jobs_queued, cpu.jobs_running, cpu.jobs_held) == (165, 805, 70)
    assert cpu.state_counts[-2:] == (("Exiting", 1), ("Begun", 0))
    assert derecho.server == "desched1.hsn.de.hpc.ucar.edu"
    casper = parse_qstat_queues(
        (DATA / "qstat_Qf_json__ncar_casper.json").read_bytes(), cluster="c", observed_ns=1
    )
    route = next(q for q in casper.records if q.queue == "casper")
    assert dict(route.state_counts)["Waiting"] == 2
    aurora = parse_qstat_queues(
        (DATA / "qstat_Qf_json__alcf_aurora_pbs_monitor.json").read_bytes(),
        cluster="c",
        observed_ns=1,
    )
    assert len(aurora.records) == 34
    for parsed in (derecho, casper, aurora):
        for q in parsed.records:
            assert q.jobs_total == sum(n for _, n in q.state_counts), q.queue


def test_the_server() -> None:
    parsed = parse_qstat_server(
        (DATA / "qstat_Bf_json__alcf_aurora_pbs_monitor.json").read_bytes(),
        cluster="c",
        observed_ns=1,
    )
    (server,) = parsed.records
    assert (server.server, server.server_state, server.jobs_total) == (AURORA, "Scheduling", 11247)
    assert dict(server.state_counts) == {
        "Transit": 0,
        "Queued": 150,
        "Held": 44,
        "Waiting": 0,
        "Running": 72,
        "Exiting": 0,
        "Begun": 0,
    }


def test_nodes_and_vnodes_with_their_resources() -> None:
    one = parse_pbsnodes(
        (DATA / "pbsnodes_av_json__0nebody_pbs_exporter_node.json").read_bytes(),
        cluster="c",
        observed_ns=1,
    )
    (node,) = one.records
    assert (node.node, node.native_state, node.state) == ("gpu1n001", "free", "mixed")
    assert (node.cpus_total, node.cpus_allocated) == (168, 96)
    assert (node.gpus_total, node.gpus_allocated) == (4, 4)
    assert node.mem_total_bytes == 1022318284 * 1024
    assert node.mem_allocated_bytes == 128 * 1024**3  # "134217728kb"
    assert node.jobs == ("1000.pbs", "1001.pbs")
    assert node.partitions == ("gpu_batch",)
    split = parse_pbsnodes(
        (DATA / "pbsnodes_av_json__0nebody_pbs_exporter_vnode.json").read_bytes(),
        cluster="c",
        observed_ns=1,
    )
    by_name = {n.node: n for n in split.records}
    assert list(by_name) == ["cpu1n001", "cpu1n001[0]", "cpu1n001[1]"]
    assert by_name["cpu1n001"].cpus_total == 0  # the natural vnode holds no resources
    assert by_name["cpu1n001[0]"].state == "mixed"
    assert by_name["cpu1n001[0]"].mem_allocated_bytes == 184549376 * 1024
    assert by_name["cpu1n001[1]"].state == "idle"  # empty resources_assigned
    assert by_name["cpu1n001[1]"].cpus_allocated == 0


@pytest.mark.parametrize(
    ("native", "state"),
    [
        ("free", "idle"),
        ("job-busy", "allocated"),
        ("job-exclusive", "allocated"),
        ("down,offline", "down"),
        ("offline", "offline"),
        ("state-unknown,down", "down"),
        ("resv-exclusive", "reserved"),
        ("maintenance", "drained"),
        ("provisioning", "unknown"),
    ],
)
def test_node_states(native: str, state: str) -> None:
    payload = b'{"pbs_server":"s","nodes":{"n1":{"state":"' + native.encode() + b'","jobs":[]}}}'
    (node,) = parse_pbsnodes(payload, cluster="c", observed_ns=1).records
    assert node.state == state


def test_an_unreadable_value_costs_only_its_field() -> None:
    payload = (
        b'{"pbs_server":"s","Jobs":{"1.s":{"job_state":"R","ctime":"yesterday",'
        b'"Resource_List":{"mem":"lots","ncpus":4}},"2.s":"garbage"}}'
    )
    parsed = parse_qstat_jobs(payload, cluster="c", zone=CHICAGO, observed_ns=1)
    (job,) = parsed.records
    assert (job.state, job.submit_ns, job.mem_requested_bytes, job.cpus_requested) == (
        "running",
        None,
        None,
        4,
    )
    assert parsed.problem_count == 3
    assert parsed.problems[0] == "2.s: not an object"
    assert parsed.problems[1].startswith("1.s: ctime: 'yesterday' is not a PBS time")
    assert parsed.problems[2].startswith("1.s: Resource_List.mem: 'lots' is not a size")
    assert not parsed.complete  # job 2 has no record: the listing is not whole


def test_subjobs_name_their_array() -> None:
    payload = b'{"Jobs":{"7[3].s":{"job_state":"R"},"7[].s":{"job_state":"B"}}}'
    parsed = parse_qstat_jobs(payload, cluster="c", zone=CHICAGO, observed_ns=1)
    sub, parent = parsed.records
    assert (sub.array_parent, parent.array_parent) == ("7[].s", None)
    assert parent.state == "running"


def test_a_listing_without_jobs_says_so() -> None:
    header = (DATA / "quirks" / "connect_error_stdout_issue_baw776.json").read_bytes()
    parsed = parse_qstat_jobs(header, cluster="c", zone=CHICAGO, observed_ns=1)
    assert (parsed.records, parsed.has_section, parsed.server) == ([], False, "6cfab3a0b8ac")


def test_the_project_stands_for_a_missing_account_but_not_the_default_one() -> None:
    # The recorded Aurora listing, each job's Account_Name taken out: the
    # project attribute (PBS Pro 19+) is what the job is charged to.
    doc = json.loads((DATA / "qstat_fx_json__alcf_aurora_pbs_monitor_head.json").read_bytes())
    projects = {job_id: attrs["project"] for job_id, attrs in doc["Jobs"].items()}
    assert all(attrs.pop("Account_Name", None) for attrs in doc["Jobs"].values())
    parsed = parse_qstat_jobs(
        json.dumps(doc).encode(), cluster="test", zone=CHICAGO, observed_ns=123
    )
    assert {r.job_id: r.account for r in parsed.records} == projects
    # A job submitted without a project has the server's default: no account.
    jobs = _jobs("qstat_fx_json__metacentrum_running_job.json", ZoneInfo("Europe/Prague"))
    assert jobs["12860476"].account is None
