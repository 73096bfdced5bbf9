"""Every recorded PBS output and quirk, replayed through the fake ``qstat``/``pbsnodes``.

The fakes are real executables run by the real :class:`LocalRunner`, as the
collectors run PBS's clients; see ``tests/fakes/pbs``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collectbus.clock import FakeClock
from collectbus.collectors.base import CollectContext
from collectbus.collectors.pbs.collector import (
    PbsJobsCollector,
    PbsNodesCollector,
    PbsQueuesCollector,
    PbsServerCollector,
)
from collectbus.collectors.pbs.parse import (
    Parsed,
    parse_pbsnodes,
    parse_qstat_jobs,
    parse_qstat_queues,
    parse_qstat_server,
)
from collectbus.collectors.run import LocalRunner
from collectbus.errors import CollectError, CommandFailed, CommandTimeout, ParseError
from tests.fakes.pbs.scenario import FAKES, stage

DATA = Path(__file__).resolve().parents[1] / "data" / "pbs"
QUIRKS = DATA / "quirks"
NS = 1_000_000_000
AURORA = "aurora-pbs-0001.hostmgmt.cm.aurora.alcf.anl.gov"


def runner(env: dict[str, str], timeout: float = 30.0) -> LocalRunner:
    return LocalRunner(env={**os.environ, **env}, timeout=timeout)


def ctx() -> CollectContext:
    return CollectContext(host="collector-host", clock=FakeClock(start_ns=1_750_000_000 * NS))


def calls(folder: Path) -> list[str]:
    return (folder / "calls.log").read_text().splitlines()


@pytest.mark.parametrize("path", sorted(DATA.glob("qstat_fx_json__*.json")), ids=lambda p: p.name)
def test_each_recorded_job_listing_replays_whole(path: Path, tmp_path: Path) -> None:
    env = stage(tmp_path, "jobs", path)
    jobs = PbsJobsCollector(
        bin_dir=str(FAKES), server="srv", timezone="America/Chicago", runner=runner(env)
    )
    c = ctx()
    records = jobs.collect(c)
    expected = parse_qstat_jobs(
        path.read_bytes(),
        cluster="pbs",
        zone=ZoneInfo("America/Chicago"),
        observed_ns=c.clock.time_ns(),
    )
    assert records == expected.records
    assert len(records) == len(json.loads(path.read_bytes())["Jobs"])
    details = dict(c.details)
    assert details["job_listing"] == "complete"
    assert details["history"] == "off"
    assert details["jobs"] == str(len(records))
    assert details["server"] == expected.server
    assert "repaired" not in details
    assert c.problems == []
    assert calls(tmp_path) == ["qstat -f -F json @srv"]


def test_history_asks_for_finished_jobs_and_keeps_them(tmp_path: Path) -> None:
    env = stage(tmp_path, "jobs_history", DATA / "qstat_fx_json__alcf_aurora_pbs_monitor_head.json")
    jobs = PbsJobsCollector(
        bin_dir=str(FAKES), history=True, timezone="America/Chicago", runner=runner(env)
    )
    c = ctx()
    records = {r.job_id.split(".")[0]: r for r in jobs.collect(c)}
    assert calls(tmp_path) == ["qstat -x -f -F json"]
    assert dict(c.details)["history"] == "on"
    assert records["6617175"].state == "timeout"
    assert records["6617175"].end_ns == 1753324679 * NS
    assert records["6631289"].state == "completed"
    assert records["4905472"].state == "held"
    assert c.clock.time_ns() == records["6631289"].observed_ns


OTHER_FILES = [
    (
        "queues",
        "Queue",
        PbsQueuesCollector,
        parse_qstat_queues,
        "qstat_Qf_json__alcf_aurora_pbs_monitor.json",
    ),
    ("queues", "Queue", PbsQueuesCollector, parse_qstat_queues, "qstat_Qf_json__ncar_casper.json"),
    ("queues", "Queue", PbsQueuesCollector, parse_qstat_queues, "qstat_Qf_json__ncar_derecho.json"),
    (
        "server",
        "Server",
        PbsServerCollector,
        parse_qstat_server,
        "qstat_Bf_json__alcf_aurora_pbs_monitor.json",
    ),
    (
        "nodes",
        "nodes",
        PbsNodesCollector,
        parse_pbsnodes,
        "pbsnodes_av_json__0nebody_pbs_exporter_node.json",
    ),
    (
        "nodes",
        "nodes",
        PbsNodesCollector,
        parse_pbsnodes,
        "pbsnodes_av_json__0nebody_pbs_exporter_vnode.json",
    ),
]


@pytest.mark.parametrize(
    ("kind", "section", "collector", "parse", "name"), OTHER_FILES, ids=[f[-1] for f in OTHER_FILES]
)
def test_each_recorded_queue_server_and_node_listing_replays_whole(
    kind: str,
    section: str,
    collector: type[PbsQueuesCollector | PbsServerCollector | PbsNodesCollector],
    parse: Callable[..., Parsed[object]],
    name: str,
    tmp_path: Path,
) -> None:
    env = stage(tmp_path, kind, DATA / name)
    c = ctx()
    records = collector(bin_dir=str(FAKES), runner=runner(env)).collect(c)
    payload = (DATA / name).read_bytes()
    assert records == parse(payload, cluster="pbs", observed_ns=c.clock.time_ns()).records
    assert [
        getattr(r, "queue", None) or getattr(r, "server", None) or getattr(r, "node", None)
        for r in records
    ] == list(json.loads(payload)[section])
    assert c.problems == []
    assert "repaired" not in dict(c.details)


def test_queues_server_and_nodes_replay(tmp_path: Path) -> None:
    env = stage(tmp_path, "queues", DATA / "qstat_Qf_json__ncar_derecho.json")
    stage(tmp_path, "server", DATA / "qstat_Bf_json__alcf_aurora_pbs_monitor.json")
    stage(tmp_path, "nodes", DATA / "pbsnodes_av_json__0nebody_pbs_exporter_vnode.json")
    settings = {"bin_dir": str(FAKES), "server": "pbs1", "runner": runner(env)}
    c = ctx()
    queues = {q.queue: q for q in PbsQueuesCollector(**settings).collect(c)}  # type: ignore[arg-type]
    assert (queues["cpu"].jobs_queued, queues["cpu"].jobs_running) == (165, 805)
    assert queues["gpu"].jobs_held == 29
    (server,) = PbsServerCollector(**settings).collect(c)  # type: ignore[arg-type]
    assert (server.server, server.jobs_total) == (AURORA, 11247)
    nodes = PbsNodesCollector(**settings).collect(c)  # type: ignore[arg-type]
    assert [n.cpus_total for n in nodes] == [0, 188, 188]
    assert nodes[1].jobs == ("1000.pbs",)
    assert calls(tmp_path) == [
        "qstat -Q -f -F json @pbs1",
        "qstat -B -f -F json pbs1",
        "pbsnodes -a -F json -s pbs1",
    ]
    assert dict(c.details)["queues"] == "14"
    assert dict(c.details)["nodes"] == "3"


@pytest.mark.parametrize(
    ("name", "repaired", "value"),
    [
        ("leading_zero_number_issue1255.json", "quoted 1 bare values", {"foo": "005"}),
        ("long_zero_digits_pbs_monitor.json", "quoted 1 bare values", "0" * 40),
        ("inf_unquoted_strtod.json", "(inf)", {"LIMIT": "inf"}),
        ("invalid_escape_issue2049.json", "invalid backslash", {"MYVAR2": "ab,c"}),
        ("control_char_x1c.json", "control characters", {"var1": "A,B,\x1c,C,D"}),
    ],
)
def test_each_quirk_is_repaired_and_said(
    name: str, repaired: str, value: object, tmp_path: Path
) -> None:
    env = stage(tmp_path, "jobs", QUIRKS / name)
    c = ctx()
    (job,) = PbsJobsCollector(bin_dir=str(FAKES), runner=runner(env)).collect(c)
    assert (job.job_id, job.state, job.queue) == ("1.pbs", "queued", "workq")
    variables = json.loads(job.raw_json)["Variable_List"]
    if isinstance(value, dict):
        assert value.items() <= variables.items()
    else:
        assert value in variables.values()
    details = dict(c.details)
    assert repaired in details["repaired"]
    assert details["job_listing"] == "complete"  # nothing was cut: every job is there
    assert c.problems == []


def test_duplicate_queue_limits_are_kept(tmp_path: Path) -> None:
    env = stage(tmp_path, "queues", QUIRKS / "duplicate_keys_issue2677.json")
    c = ctx()
    (queue,) = PbsQueuesCollector(bin_dir=str(FAKES), runner=runner(env)).collect(c)
    assert queue.queue == "QueueA"
    assert (queue.enabled, queue.started) == (True, True)
    assert json.loads(queue.raw_json)["max_queued"] == [
        "[o:PBS_ALL=10]",
        "[u:PBS_GENERIC=2]",
        "[u:tom=15]",
    ]
    assert dict(c.details)["repaired"] == "duplicate keys kept as lists: max_queued"


def test_text_mixed_into_the_json_makes_a_partial_listing(tmp_path: Path) -> None:
    env = stage(tmp_path, "jobs", QUIRKS / "mixed_text_and_json_issue2675.txt")
    c = ctx()
    records = PbsJobsCollector(bin_dir=str(FAKES), runner=runner(env)).collect(c)
    assert records == []
    details = dict(c.details)
    assert details["job_listing"] == "partial"
    assert "text around the JSON" in details["repaired"]
    (problem,) = c.problems
    assert "job listing incomplete" in str(problem)


def test_a_connection_error_is_a_failure_naming_command_and_server(tmp_path: Path) -> None:
    env = stage(
        tmp_path,
        "jobs",
        QUIRKS / "connect_error_stdout_issue_baw776.json",
        stderr=QUIRKS / "connect_error_stderr_issue_baw776.txt",
        rc=255,
    )
    jobs = PbsJobsCollector(bin_dir=str(FAKES), server="6cfab3a0b8ac", runner=runner(env))
    with pytest.raises(CommandFailed) as info:
        jobs.collect(ctx())
    message = str(info.value)
    assert message.startswith(f"{FAKES}/qstat -f -F json @6cfab3a0b8ac on server 6cfab3a0b8ac")
    assert "exited with status 255: qstat: cannot connect to server 6cfab3a0b8ac" in message
    assert "\n" not in message
    assert info.value.returncode == 255


def test_header_only_json_with_stderr_is_a_failure_even_with_status_0(tmp_path: Path) -> None:
    env = stage(
        tmp_path,
        "jobs",
        QUIRKS / "connect_error_stdout_issue_baw776.json",
        stderr=QUIRKS / "connect_error_stderr_issue_baw776.txt",
    )
    with pytest.raises(CommandFailed, match=r"no Jobs in the output: qstat: cannot connect"):
        PbsJobsCollector(bin_dir=str(FAKES), runner=runner(env)).collect(ctx())


def test_header_only_json_without_stderr_is_zero_jobs(tmp_path: Path) -> None:
    env = stage(tmp_path, "jobs", QUIRKS / "connect_error_stdout_issue_baw776.json")
    c = ctx()
    assert PbsJobsCollector(bin_dir=str(FAKES), runner=runner(env)).collect(c) == []
    assert dict(c.details)["job_listing"] == "complete"


def test_a_hung_server_is_a_timeout(tmp_path: Path) -> None:
    env = stage(tmp_path, "nodes", hang=True)
    nodes = PbsNodesCollector(bin_dir=str(FAKES), server="s1", timeout=0.5, runner=runner(env))
    with pytest.raises(CommandTimeout, match=r"pbsnodes -a -F json -s s1 on server s1: timed out"):
        nodes.collect(ctx())


def test_the_wrong_server_is_refused_by_the_fake_as_by_qstat(tmp_path: Path) -> None:
    env = stage(tmp_path, "server", DATA / "qstat_Bf_json__alcf_aurora_pbs_monitor.json")
    (tmp_path / "server_name").write_text("pbs1")
    with pytest.raises(CommandFailed, match="cannot connect to server elsewhere"):
        PbsServerCollector(bin_dir=str(FAKES), server="elsewhere", runner=runner(env)).collect(
            ctx()
        )


def test_an_unrepairable_payload_is_spooled_and_the_other_entities_go_on(tmp_path: Path) -> None:
    broken = b'{\n    "pbs_server":"s",\n    "Jobs":{\n        "1.s":{"job_state":"R",'
    env = stage(tmp_path / "fake", "jobs", broken)
    stage(tmp_path / "fake", "queues", DATA / "qstat_Qf_json__ncar_casper.json")
    spool = tmp_path / "spool"
    settings = {"bin_dir": str(FAKES), "spool_dir": str(spool), "runner": runner(env)}
    with pytest.raises(ParseError, match=r"qstat -f -F json on the default server:\d+: not JSON"):
        PbsJobsCollector(**settings).collect(ctx())  # type: ignore[arg-type]
    (kept,) = spool.glob("pbs-jobs-*.raw")
    assert kept.read_bytes() == broken
    assert len(PbsQueuesCollector(**settings).collect(ctx())) == 22  # type: ignore[arg-type]


def test_over_ssh_the_commands_run_on_the_login_node(tmp_path: Path) -> None:
    env = stage(tmp_path, "jobs", DATA / "qstat_fx_json__metacentrum_running_job.json")
    jobs = PbsJobsCollector(
        bin_dir=str(FAKES),
        ssh_host="login1",
        ssh_command=str(FAKES / "ssh"),
        timezone="Europe/Prague",
        runner=runner(env),
    )
    (job,) = jobs.collect(ctx())
    assert job.submit_ns == 1664911400 * NS
    unreachable = PbsJobsCollector(
        bin_dir=str(FAKES),
        ssh_host="unreachable",
        ssh_command=str(FAKES / "ssh"),
        runner=runner(env),
    )
    with pytest.raises(
        CommandFailed, match=r"on the default server via unreachable: exited with status 255"
    ):
        unreachable.collect(ctx())


def test_a_missing_binaries_folder_is_one_clear_error(tmp_path: Path) -> None:
    jobs = PbsJobsCollector(bin_dir=str(tmp_path / "nope"), runner=runner({}))
    with pytest.raises(CollectError, match="command not found"):
        jobs.collect(ctx())


def test_the_fake_refuses_output_formats_other_than_json(tmp_path: Path) -> None:
    env = stage(tmp_path, "jobs", DATA / "qstat_fx_json__metacentrum_running_job.json")
    result = runner(env).run([str(FAKES / "qstat"), "-f"], check=False)
    assert result.returncode == 2
    assert "usage" in result.stderr_tail


def test_a_lasting_quirk_is_logged_once_and_noted_every_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = stage(tmp_path, "jobs", QUIRKS / "leading_zero_number_issue1255.json")
    jobs = PbsJobsCollector(bin_dir=str(FAKES), runner=runner(env))
    contexts = [ctx(), ctx()]
    with caplog.at_level(logging.INFO, logger="collectbus.collectors.pbs"):
        for c in contexts:
            jobs.collect(c)
    assert [r.getMessage().split(": ", 1)[1] for r in caplog.records] == [
        "repaired the JSON: quoted 1 bare values that are not JSON (005)"
    ]
    assert all("repaired" in dict(c.details) for c in contexts)
