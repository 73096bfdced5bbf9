"""``collectbus daemon start|status|stop`` as a user runs them."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from tests.integration.cli_helpers import assert_stopped, collectbus, collectbus_env

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'daemon.db'}")


def test_start_status_stop(tmp_path: Path, env: dict[str, str]) -> None:
    # --wait and --timeout take durations like every other time option.
    started = collectbus("daemon", "start", "--wait", "20s", cwd=tmp_path, env=env)
    assert started.returncode == 0, started.stderr
    assert "started (pid" in started.stdout
    try:
        info = json.loads((tmp_path / "collectbus.pid").read_text())
        assert info["host"] == socket.gethostname()
        assert info["user"]
        status = collectbus("daemon", "status", "--format", "json", cwd=tmp_path, env=env)
        assert status.returncode == 0, status.stderr
        items = json.loads(status.stdout)
        assert items["state"] == "running"
        deadline = time.monotonic() + 30
        while not items["latest_collections"] and time.monotonic() < deadline:
            time.sleep(0.2)
            status = collectbus("daemon", "status", "--format", "json", cwd=tmp_path, env=env)
            items = json.loads(status.stdout)
        # The daemon collects and writes: its first collection is in the store.
        assert items["latest_collections"][0]["source"] == "host"
        assert items["latest_collections"][0]["status"] == "ok"
        assert items["pid"] == info["pid"]

        again = collectbus("daemon", "start", cwd=tmp_path, env=env)
        assert again.returncode == 1
        assert "already running" in again.stderr
        assert again.stderr.count("\n") <= 2  # one line, and a hint
    finally:
        stopped = collectbus("daemon", "stop", "--timeout", "1m", cwd=tmp_path, env=env)
    assert_stopped(stopped, tmp_path, env)
    log = (tmp_path / "collectbus.log").read_text()
    assert "received SIGTERM" in log


def test_stale_pid_file_is_detected(tmp_path: Path, env: dict[str, str]) -> None:
    # A PID that cannot be running: the highest possible one plus one.
    dead = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    (tmp_path / "collectbus.pid").write_text(
        json.dumps({"pid": dead, "host": socket.gethostname(), "user": "x", "started": 0})
    )
    status = collectbus("daemon", "status", cwd=tmp_path, env=env)
    assert status.returncode == 3
    assert "stale PID file" in status.stderr
    assert not (tmp_path / "collectbus.pid").exists()


def test_pid_file_of_another_host_is_not_touched(tmp_path: Path, env: dict[str, str]) -> None:
    pid_file = tmp_path / "collectbus.pid"
    pid_file.write_text(
        json.dumps({"pid": os.getpid(), "host": "elsewhere.example", "user": "x", "started": 0})
    )
    started = collectbus("daemon", "start", cwd=tmp_path, env=env)
    assert started.returncode == 1
    assert "elsewhere.example" in started.stderr
    assert pid_file.exists()


def test_stop_when_not_running(tmp_path: Path, env: dict[str, str]) -> None:
    result = collectbus("daemon", "stop", cwd=tmp_path, env=env)
    assert result.returncode == 3
    assert "not running" in result.stderr
