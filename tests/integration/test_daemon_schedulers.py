"""``collectbus daemon start`` from a config file that enables PBS and Slurm.

PBS is the fake ``qstat``/``pbsnodes`` replaying the scenario's ``running``
step (``tests/fakes/pbs``); Slurm is the real single-node cluster of
``scripts/slurm-local.sh``. The daemon runs as a real background process
until jobs of both clusters are in the store; then ``collectbus analyze
wait-times --by queue`` shows both clusters' queues and partitions.
Without a running Slurm the test is skipped with the reason, except when
``CI=true``: then it fails.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from collectbus.store import open as open_store
from collectbus.store.schema import jobs
from tests.fakes.pbs.scenario import FAKES, JOB_A, SERVER, ZONE, build_scenario
from tests.integration.cli_helpers import collectbus, collectbus_env
from tests.integration.test_slurm import _run, _submit, slurm_env

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
__all__ = ["slurm_env"]  # the fixture, shared with the Slurm tests

DATA = Path(__file__).resolve().parents[1] / "data" / "pbs"
DEADLINE_S = 120


def _started(url: str, tag_job: str) -> set[str]:
    """The clusters of the stored jobs that started: metacentrum's job A, our Slurm job."""
    store = open_store(url, migrate=False)
    try:
        with store.jobs.reading() as conn:
            rows = conn.execute(
                select(jobs.c.cluster, jobs.c.job_id).where(
                    jobs.c.job_id.in_([JOB_A, tag_job]), jobs.c.start_ns.is_not(None)
                )
            ).all()
    finally:
        store.close()
    return {str(cluster) for cluster, _ in rows}


def test_the_daemon_collects_pbs_and_slurm_into_one_store(
    tmp_path: Path, slurm_env: dict[str, str]
) -> None:
    scenario = build_scenario(tmp_path / "pbs")
    scenario.activate("running")
    step = scenario.root / "running"
    shutil.copy(DATA / "qstat_Qf_json__ncar_casper.json", step / "queues.json")
    url = f"sqlite:///{tmp_path / 'collectbus.db'}"
    config = tmp_path / "collectbus.toml"
    config.write_text(
        f"""host = "test"
[store]
url = "{url}"
[daemon]
pid_file = "{tmp_path / "collectbus.pid"}"
log_file = "{tmp_path / "collectbus.log"}"
[collectors.host]
enabled = false
[collectors.host_inventory]
enabled = false
[collectors.pbs]
enabled = true
cluster = "metacentrum"
bin_dir = "{FAKES}"
server = "{SERVER}"
timezone = "{ZONE}"
history = true
[collectors.pbs.intervals]
jobs = "1s"
nodes = "1h"
queues = "1s"
server = "1h"
[collectors.slurm]
enabled = true
cluster = "localslurm"
[collectors.slurm.intervals]
jobs = "1s"
nodes = "1h"
partitions = "1s"
"""
    )
    env = {**collectbus_env(tmp_path, url), **slurm_env, **scenario.env}
    for key in ("COLLECTBUS_DB_URL", "COLLECTBUS_PID_FILE", "COLLECTBUS_LOG_FILE"):
        env.pop(key)  # from the config file alone
    env["COLLECTBUS_CONFIG"] = str(config)
    tag = f"cbd{secrets.token_hex(3)}"
    job = _submit(slurm_env, tag, "ok", "--wrap", "sleep 1")
    started = collectbus("daemon", "start", cwd=tmp_path, env=env)
    assert started.returncode == 0, started.stderr
    try:
        deadline = time.monotonic() + DEADLINE_S
        while _started(url, job) != {"metacentrum", "localslurm"}:
            if time.monotonic() > deadline:
                log = (tmp_path / "collectbus.log").read_text()
                pytest.fail(f"no started jobs of both clusters after {DEADLINE_S} s; log:\n{log}")
            time.sleep(0.5)
    finally:
        stopped = collectbus("daemon", "stop", cwd=tmp_path, env=env)
        with contextlib.suppress(AssertionError, subprocess.SubprocessError):
            _run(slurm_env, "scancel", job)  # it may have ended already
    assert stopped.returncode == 0, stopped.stderr
    log = (tmp_path / "collectbus.log").read_text()
    assert "received SIGTERM" in log

    table = collectbus(
        "analyze", "wait-times", "--by", "queue", "--since", "2022-10-01", cwd=tmp_path, env=env
    )
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    header = [cell.strip() for cell in lines[0].split("┃")]
    assert header[:3] == ["queue", "definition", "jobs"], table.stdout
    queues = {line.split("│")[0].strip() for line in lines if "│" in line}
    assert {"charon_2h", "debug"} <= queues, table.stdout

    store = open_store(url, migrate=False)
    try:
        sources = {(r["source"], r["status"]) for r in store.collection_log()}
    finally:
        store.close()
    for source in ("pbs-jobs", "pbs-queues", "slurm-jobs", "slurm-partitions"):
        assert (source, "ok") in sources, sources
