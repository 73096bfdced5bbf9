"""Running the real ``collectbus`` command, in a subprocess or in this process, for
integration tests."""

from __future__ import annotations

import logging
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


def collectbus_in_process(
    *args: str, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run ``collectbus ARGS`` in this process as the entry point runs it: the same
    command line, working directory and environment as :func:`collectbus`, its
    output and exit code captured; the logging set-up it makes is undone after.

    For the tests of what a command prints and stores; those of how a process
    starts, is signalled or exits keep :func:`collectbus`.
    """
    from click.testing import CliRunner

    from collectbus.cli.main import main

    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "alembic", "collectbus")}
    handlers = list(root.handlers)
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    # As in a new process: no handler yet, so the command's logging.basicConfig
    # writes to its stderr.
    for handler in handlers:
        root.removeHandler(handler)
    try:
        with CliRunner().isolation() as (out, err, _output):
            try:
                main(list(args))
            except SystemExit as exit_:
                code = exit_.code
            else:
                code = 0
            stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    returncode = code if isinstance(code, int) else (0 if code is None else 1)
    return subprocess.CompletedProcess(["collectbus", *args], returncode, stdout, stderr)
