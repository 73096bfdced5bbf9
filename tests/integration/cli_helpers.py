"""Running the real ``collectbus`` command in a subprocess, for integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def collectbus_env(tmp_path: Path, db_url: str) -> dict[str, str]:
    """An environment that keeps every file of the run inside ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLECTBUS_")}
    env.update(
        COLLECTBUS_DB_URL=db_url,
        XDG_CONFIG_HOME=str(tmp_path / "xdg"),
        COLLECTBUS_PID_FILE=str(tmp_path / "collectbus.pid"),
        COLLECTBUS_LOG_FILE=str(tmp_path / "collectbus.log"),
    )
    return env


def collectbus(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m collectbus ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "collectbus", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_collectbus(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start ``python -m collectbus ARGS`` in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "collectbus", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_stopped(
    stopped: subprocess.CompletedProcess[str], cwd: Path, env: dict[str, str]
) -> None:
    """``daemon stop`` (its result ``stopped``) succeeded and the daemon is gone."""
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped (pid" in stopped.stdout
    assert not (cwd / "collectbus.pid").exists()
    after = collectbus("daemon", "status", cwd=cwd, env=env)
    assert after.returncode == 3
    assert "not running" in after.stderr
