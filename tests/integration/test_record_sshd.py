"""collectbus record against a real OpenSSH server on 127.0.0.1.

The test starts ``sshd`` itself (tests/sshd.py): its own host key and config,
two non-default ports reached as the aliases ``h1`` and ``h2`` of a generated
``ssh_config``, key-only authentication, and a third alias ``dead`` on a port
that accepts connections and never speaks. Without sshd the tests are
skipped, except with ``CI=true``, where they fail.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectbus.collectors.host.parse import parse_stat
from collectbus.recording import Recorder
from collectbus.recording.mlcommons import is_error_sample
from collectbus.store import open as open_store
from tests.integration.cli_helpers import collectbus, collectbus_env
from tests.sshd import ThrowawaySshd, find_sshd

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawaySshd]:
    binary = find_sshd()
    if binary is None:
        reason = "OpenSSH server not installed (apt-get install -y openssh-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"sshd is required when CI=true: {reason}")
        pytest.skip(reason)
    with ThrowawaySshd(tmp_path_factory.mktemp("sshd"), binary) as server:
        yield server


def test_two_ssh_hosts_and_a_dead_one(sshd: ThrowawaySshd) -> None:
    rec = Recorder(
        ["h1", "h2", "dead", "localhost"],
        interval=0.5,
        timeout=3.0,
        ssh_config=str(sshd.ssh_config),
    )
    with rec:
        # Wait for rounds, not for a time: three good rounds of both SSH hosts.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            snap = rec.snapshot()
            if all(len(snap.good_samples(h)) >= 3 for h in ("h1", "h2")) and snap.errors_by_host:
                break
            time.sleep(0.05)
    data = rec.result
    assert data is not None
    assert data.collection_method == "ssh"
    # dead has only failed rounds: collected as MLCommons lists it, not answered.
    assert data.hosts_collected == ("h1", "h2", "dead", "localhost")
    assert data.hosts_answered == ("h1", "h2", "localhost")
    names = {e.hostname for h in ("h1", "h2") for e in data.extras(h)}
    assert names == {socket.gethostname()}  # the remote machine's own name (this one)
    btime = parse_stat(Path("/proc/stat").read_bytes())[1].boot_time_s
    for host in ("h1", "h2"):
        good = data.good_samples(host)
        assert len(good) >= 3
        for sample in good:
            # The same machine, read over SSH: the same boot time and CPUs.
            assert sample.host == host
            assert sample.stat is not None
            assert sample.stat.boot_time_s == btime
            assert len(sample.cpu) == (os.cpu_count() or 0) + 1
            assert sample.mem
            assert sample.vmstat
            assert sample.disk
            assert sample.net
            assert sample.load
            assert sample.errors == ()
        assert [s.time_ns for s in good] == sorted(s.time_ns for s in good)
    dead = data.samples_by_host["dead"]
    assert dead
    assert all(is_error_sample(s) for s in dead)
    assert all(s.errors[0].startswith("dead: ") for s in dead)
    assert all("\n" not in s.errors[0] for s in dead)
    assert data.errors_by_host["dead"].count == len(dead)
    assert "h1" not in data.errors_by_host


def test_the_cli_completes_with_a_dead_host_and_names_it(
    sshd: ThrowawaySshd, tmp_path: Path
) -> None:
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'cb.db'}")
    hosts = tmp_path / "hosts"
    hosts.write_text("h1\nh2  # second port\ndead\n")
    done = collectbus(
        "record",
        f"--hosts=@{hosts}",
        "--interval=0.5s",
        "--timeout=3s",
        f"--ssh-config={sshd.ssh_config}",
        f"--out={tmp_path}",
        "--",
        sys.executable,
        "-c",
        "import time; time.sleep(3)",
        cwd=tmp_path,
        env=env,
        timeout=120,  # a guard against a hang, not a measure of speed
    )
    assert done.returncode == 0, done.stderr
    (result,) = tmp_path.glob("timeseries-*.json")
    assert f"result: {result}" in done.stderr
    doc = json.loads(result.read_text())
    assert doc["hosts_requested"] == ["h1", "h2", "dead"]
    assert doc["hosts_collected"] == ["h1", "h2", "dead"]
    assert doc["collectbus"]["hosts_answered"] == ["h1", "h2"]
    assert doc["collection_method"] == "ssh"
    assert doc["collectbus"]["errors_by_host"]["dead"]["count"] >= 1
    assert doc["collectbus"]["errors_by_host"]["dead"]["last"].startswith("dead: ")
    assert all(s["errors"]["ssh"].startswith("dead: ") for s in doc["samples_by_host"]["dead"])
    assert "dead: " in done.stderr  # the failure is named on the terminal too
    store = open_store(f"sqlite:///{tmp_path / 'cb.db'}", migrate=False)
    try:
        log = store.collection_log()
        stored_hosts = {row["name"] for row in store.hosts()}
    finally:
        store.close()
    assert stored_hosts == {"h1", "h2"}
    failed = [row for row in log if row["host"] == "dead"]
    assert failed
    assert {row["status"] for row in failed} <= {"error", "timeout"}
    assert all(str(row["error"]).startswith("dead: ") for row in failed)
    h1_errors = [row["error"] for row in log if row["host"] == "h1" and row["status"] != "ok"]
    assert not h1_errors
