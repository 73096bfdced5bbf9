"""``collectbus jobs|nodes|queues --collect``: one collection, stored as the
daemon stores it, then shown; run as a user would, against the fake PBS."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy import select

from collectbus.store import open as open_store
from collectbus.store.schema import job_history
from tests.fakes.pbs.scenario import FAKES, JOB_A, JOB_B, SERVER, ZONE, Scenario, build_scenario
from tests.integration.cli_helpers import collectbus, collectbus_env, collectbus_in_process

DATA = Path(__file__).resolve().parents[1] / "data" / "pbs"


def _setup(tmp_path: Path) -> tuple[Scenario, dict[str, str], str]:
    scenario = build_scenario(tmp_path / "pbs")
    url = f"sqlite:///{tmp_path / 'collectbus.db'}"
    env = collectbus_env(tmp_path, url)
    config = tmp_path / "collectbus.toml"
    config.write_text(
        f'[collectors.pbs]\nenabled = true\ncluster = "metacentrum"\nbin_dir = "{FAKES}"\n'
        f'server = "{SERVER}"\ntimezone = "{ZONE}"\nhistory = true\n'
    )
    env.update(COLLECTBUS_CONFIG=str(config), **scenario.env)
    return scenario, env, url


def _jobs(tmp_path: Path, env: dict[str, str], code: int = 0) -> tuple[dict[str, str], str]:
    result = collectbus_in_process(
        "jobs", "--collect", "--since", "2022-10-01", "--format", "json", cwd=tmp_path, env=env
    )
    assert result.returncode == code, result.stderr
    if code == 1:  # nothing collected: nothing shown
        assert result.stdout == ""
        return {}, result.stderr
    return {r["job_id"]: r["state"] for r in json.loads(result.stdout)}, result.stderr


def test_jobs_collect_stores_each_step_then_shows_it(tmp_path: Path) -> None:
    scenario, env, url = _setup(tmp_path)
    shown, stderr = _jobs(tmp_path, env)
    assert shown == {JOB_A: "queued", JOB_B: "held"}
    assert "collectbus: pbs-jobs: ok, 2 records" in stderr

    scenario.activate("running")
    shown, _ = _jobs(tmp_path, env)
    assert shown == {JOB_A: "running", JOB_B: "held"}

    scenario.activate("down")
    # qstat exits 255: the command failed, and says why once, without the bus's words.
    _, stderr = _jobs(tmp_path, env, code=1)
    line, error, hint = stderr.splitlines()
    assert line.startswith("collectbus: pbs-jobs: error, 0 records: ")
    assert f"qstat -x -f -F json @{SERVER} on server {SERVER}: exited with status 255" in line
    assert error == "collectbus: error: pbs-jobs: nothing collected"
    assert hint == "  hint: the reason is on the line above"
    scenario.activate("running")
    shown, _ = _jobs(tmp_path, env)
    assert shown == {JOB_A: "running", JOB_B: "held"}  # what is stored, nothing gone

    store = open_store(url)
    try:
        log = store.collection_log()
        with store.jobs.reading() as conn:
            c = job_history.c
            rows = conn.execute(
                select(c.job_id, c.field, c.old_value, c.new_value).order_by(c.id)
            ).all()
    finally:
        store.close()
    assert [(r["source"], r["status"]) for r in log] == [
        ("pbs-jobs", "ok"),
        ("pbs-jobs", "ok"),
        ("pbs-jobs", "error"),
        ("pbs-jobs", "ok"),
    ]
    assert log[0]["details"]["job_listing"] == "complete"
    states = [(str(j), old, new) for j, field, old, new in rows if field == "state"]
    assert states == [(JOB_A, None, "queued"), (JOB_B, None, "held"), (JOB_A, "queued", "running")]


def test_nodes_and_queues_collect(tmp_path: Path) -> None:
    scenario, env, _ = _setup(tmp_path)
    step = scenario.root / "queued"
    shutil.copy(DATA / "pbsnodes_av_json__0nebody_pbs_exporter_node.json", step / "nodes.json")
    shutil.copy(DATA / "qstat_Qf_json__ncar_casper.json", step / "queues.json")
    nodes = collectbus_in_process("nodes", "--collect", "--format", "json", cwd=tmp_path, env=env)
    assert nodes.returncode == 0, nodes.stderr
    assert "collectbus: pbs-nodes: ok" in nodes.stderr
    rows = json.loads(nodes.stdout)
    assert rows
    assert {r["cluster"] for r in rows} == {"metacentrum"}
    queues = collectbus_in_process("queues", "--collect", "--format", "json", cwd=tmp_path, env=env)
    assert queues.returncode == 0, queues.stderr
    assert "collectbus: pbs-queues: ok" in queues.stderr
    recorded = json.loads((DATA / "qstat_Qf_json__ncar_casper.json").read_text())["Queue"]
    assert sorted(r["queue"] for r in json.loads(queues.stdout)) == sorted(recorded)


def test_collect_with_no_scheduler_enabled_says_so(tmp_path: Path) -> None:
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'collectbus.db'}")
    config = tmp_path / "collectbus.toml"
    config.write_text("[collectors.pbs]\nenabled = false\n")
    env["COLLECTBUS_CONFIG"] = str(config)
    result = collectbus("jobs", "--collect", cwd=tmp_path, env=env)
    assert result.returncode != 0
    assert "no scheduler collector is enabled" in result.stderr
    assert "[collectors.pbs]" in result.stderr


def _failing_slurm(tmp_path: Path, env: dict[str, str], script: str, timeout: str = "5s") -> None:
    """Add a Slurm section whose squeue, sinfo, sacct and scontrol run ``script``."""
    bin_dir = tmp_path / "slurm-bin"
    bin_dir.mkdir()
    for name in ("squeue", "sinfo", "sacct", "scontrol"):
        program = bin_dir / name
        program.write_text(f"#!/bin/sh\n{script}\n")
        program.chmod(0o755)
    config = Path(env["COLLECTBUS_CONFIG"])
    config.write_text(
        config.read_text()
        + f'[collectors.slurm]\nenabled = true\ncluster = "c1"\nbin_dir = "{bin_dir}"\n'
        f'timeout = "{timeout}"\naccounting = "none"\n'
    )


def test_some_collections_failing_is_partly_done(tmp_path: Path) -> None:
    # PBS answers, Slurm's squeue exits 255: PBS's jobs are stored and shown, exit 4.
    _, env, _ = _setup(tmp_path)
    _failing_slurm(tmp_path, env, "echo 'slurm_load_jobs error: Unable to contact' >&2; exit 255")
    shown, stderr = _jobs(tmp_path, env, code=4)
    assert shown == {JOB_A: "queued", JOB_B: "held"}
    assert "collectbus: pbs-jobs: ok, 2 records" in stderr
    assert "collectbus: slurm-jobs: error, 0 records: " in stderr
    assert stderr.splitlines()[-1] == (
        "collectbus: partly done: 1 of 2 collections failed (slurm-jobs)"
    )
    assert "backing off" not in stderr


def test_a_hanging_or_garbled_scheduler_fails_the_command(tmp_path: Path) -> None:
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'collectbus.db'}")
    config = tmp_path / "collectbus.toml"
    config.write_text("")
    env["COLLECTBUS_CONFIG"] = str(config)
    _failing_slurm(tmp_path, env, "sleep 30", timeout="1s")
    for args in (["jobs", "--collect"], ["nodes", "--collect"], ["queues", "--collect"]):
        result = collectbus(*args, cwd=tmp_path, env=env)
        assert result.returncode == 1, (args, result.stderr)
        assert "timed out after 1 s" in result.stderr, args
        assert "nothing collected" in result.stderr, args
        assert "no jobs found" not in result.stderr, args
    for name in ("squeue", "sinfo", "sacct", "scontrol"):
        (tmp_path / "slurm-bin" / name).write_text("#!/bin/sh\necho '{\"jobs\": [{'\n")
    result = collectbus("jobs", "--collect", cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stderr
    assert "slurm-jobs: error, 0 records: " in result.stderr
    assert "nothing collected" in result.stderr


def _run(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    done = collectbus_in_process(*args, cwd=tmp_path, env=env)
    return done.returncode, done.stdout, done.stderr


def test_job_history_and_analyze_collect_first(tmp_path: Path) -> None:
    scenario, env, _ = _setup(tmp_path)
    # Nothing stored yet: without --collect, there is nothing to show.
    code, _, stderr = _run(tmp_path, env, "job", JOB_A)
    assert code == 1
    assert "no such database file" in stderr
    code, out, stderr = _run(tmp_path, env, "job", JOB_A, "--collect", "--format", "json")
    assert code == 0, stderr
    assert "collectbus: pbs-jobs: ok, 2 records" in stderr
    ((shown,),) = [[entry["job"] for entry in json.loads(out)]]
    assert (shown["job_id"], shown["state"]) == (JOB_A, "queued")

    scenario.activate("running")
    code, out, stderr = _run(tmp_path, env, "history", "--collect", "--format", "json")
    assert code == 0, stderr
    assert "collectbus: pbs-jobs: ok" in stderr
    changes = [(r["job_id"], r["old_value"], r["new_value"]) for r in json.loads(out)]
    # The change this very collection stored is in the window ("now" is after it).
    assert (JOB_A, "queued", "running") in changes

    scenario.activate("finished")
    code, out, stderr = _run(
        tmp_path, env, "analyze", "top", "--collect", "--since", "2022-10-01", "--format", "json"
    )
    assert code == 0, stderr
    assert "collectbus: pbs-jobs: ok" in stderr
    rows = json.loads(out)
    assert sum(r["jobs"] for r in rows) == 2
    assert sum(r["started"] for r in rows) == 1  # JOB_A ran; JOB_B is held
    for command in ("wait-times", "runtime", "queue-depth"):
        code, out, stderr = _run(
            tmp_path, env, "analyze", command, "--collect", "--since", "2022-10-01",
            "--format", "json",
        )  # fmt: skip
        assert code == 0, (command, stderr)
        assert "collectbus: pbs-jobs: ok" in stderr, command
        assert json.loads(out), command


def test_node_states_collect_collects_nodes(tmp_path: Path) -> None:
    scenario, env, _ = _setup(tmp_path)
    shutil.copy(
        DATA / "pbsnodes_av_json__0nebody_pbs_exporter_node.json",
        scenario.root / "queued" / "nodes.json",
    )
    code, out, stderr = _run(
        tmp_path, env, "analyze", "node-states", "--collect", "--since", "1h", "--format", "json"
    )
    assert code == 0, stderr
    assert "collectbus: pbs-nodes: ok" in stderr
    assert "pbs-jobs" not in stderr
    assert json.loads(out)


def test_a_failing_qstat_fails_job_history_and_analyze_in_one_line(tmp_path: Path) -> None:
    scenario, env, _ = _setup(tmp_path)
    assert _run(tmp_path, env, "jobs", "--collect")[0] == 0  # something is stored
    scenario.activate("down")  # qstat exits 255
    for args in (
        ("job", JOB_A, "--collect"),
        ("history", "--collect"),
        ("analyze", "wait-times", "--collect", "--since", "2022-10-01"),
        ("analyze", "top", "--collect", "--since", "2022-10-01"),
        ("analyze", "queue-depth", "--collect", "--since", "2022-10-01"),
    ):
        code, out, stderr = _run(tmp_path, env, *args)
        assert code == 1, (args, stderr)
        assert out == "", args  # nothing shown when nothing was collected
        line, error, hint = stderr.splitlines()
        assert line.startswith("collectbus: pbs-jobs: error, 0 records: "), args
        assert "exited with status 255" in line, args
        assert error == "collectbus: error: pbs-jobs: nothing collected", args
        assert hint == "  hint: the reason is on the line above", args


def test_history_and_analyze_are_partly_done_when_one_scheduler_fails(tmp_path: Path) -> None:
    _, env, _ = _setup(tmp_path)
    _failing_slurm(tmp_path, env, "echo 'slurm_load_jobs error: Unable to contact' >&2; exit 255")
    for args in (
        ("history", "--collect", "--format", "json"),
        ("analyze", "top", "--collect", "--since", "2022-10-01", "--format", "json"),
        ("job", JOB_B, "--collect", "--format", "json"),
    ):
        code, out, stderr = _run(tmp_path, env, *args)
        assert code == 4, (args, stderr)
        assert json.loads(out), args  # what PBS gave was stored and shown
        assert stderr.splitlines()[-1] == (
            "collectbus: partly done: 1 of 2 collections failed (slurm-jobs)"
        ), args


def test_a_bad_window_is_refused_before_collecting(tmp_path: Path) -> None:
    _, env, url = _setup(tmp_path)
    for args in (
        ("history", "--collect", "--since", "5"),
        ("analyze", "top", "--collect", "--since", "5"),
        ("analyze", "queue-depth", "--collect", "--since", "30d", "--step", "1s"),
    ):
        code, _, stderr = _run(tmp_path, env, *args)
        assert code == 2, (args, stderr)
        assert "pbs-jobs" not in stderr, args
    with open_store(url) as store:
        assert store.collection_log() == []
