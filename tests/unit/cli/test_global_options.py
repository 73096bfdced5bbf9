"""The global options work before or after the command, and ``collectbus``
alone prints its help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tests.integration.cli_helpers import collectbus_in_process

from collectbus.store import open as open_store
from collectbus.testing.hosts import make_host_sample

S = 10**9
PROC = Path(__file__).parents[2] / "data" / "procfs" / "fc-6.18-2cpu"


def _env(cwd: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLECTBUS_")}
    env["XDG_CONFIG_HOME"] = str(cwd / "xdg")
    return env


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collectbus", *args],
        cwd=cwd,
        env=_env(cwd),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _run_here(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The same command line, parsed and run in this process."""
    return collectbus_in_process(*args, cwd=cwd, env=_env(cwd))


@pytest.fixture
def url(migrated_sqlite_url: str) -> str:
    url = migrated_sqlite_url
    now = time.time_ns()
    with open_store(url) as store:
        store.write([make_host_sample("h", now - i * 10 * S) for i in range(4, 0, -1)])
    return url


def test_db_after_the_command(tmp_path: Path, url: str) -> None:
    after = _run_here("host", "--since", "5m", "--format", "json", "--db", url, cwd=tmp_path)
    before = _run_here("--db", url, "host", "--since", "5m", "--format", "json", cwd=tmp_path)
    assert after.returncode == 0, after.stderr
    assert len(json.loads(after.stdout)) == 4
    assert after.stdout == before.stdout
    status = _run_here("db", "status", "--db", url, "--format", "json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["database"] == url


def test_the_option_after_the_command_wins(tmp_path: Path, url: str) -> None:
    missing = f"sqlite:///{tmp_path / 'missing.db'}"
    done = _run_here("--db", missing, "host", "--db", url, "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = _run_here("--db", url, "host", "--db", missing, cwd=tmp_path)
    assert done.returncode == 1
    assert "missing.db: no such database file" in done.stderr


def test_config_after_the_command(tmp_path: Path, url: str) -> None:
    config = tmp_path / "other.toml"
    config.write_text(f'[store]\nurl = "{url}"\n')
    done = _run_here("host", "--config", str(config), "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == 4


def test_proc_root_after_a_nested_command(tmp_path: Path) -> None:
    done = _run_here("collect", "host", "--proc-root", str(PROC), "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    sample = json.loads(done.stdout)
    # The recorded /proc/stat, not this machine's.
    assert sample["stat"]["boot_time_s"] == 1795497241
    assert [d["device"] for d in sample["disk"]] == ["vda"]


def test_verbose_after_the_command_raises_the_log_level(tmp_path: Path, url: str) -> None:
    code = textwrap.dedent(
        f"""
        import contextlib, io, logging, sys
        from collectbus.cli.main import main
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                main(["host", "--db", {url!r}, "-v", "--format", "json"])
            except SystemExit:
                pass
        print(logging.getLogger().level)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["20"]  # INFO
    verbose = _run("-v", "host", "-v", "--db", url, "--format", "json", cwd=tmp_path)
    assert verbose.returncode == 0, verbose.stderr


def test_help_says_so(tmp_path: Path) -> None:
    done = _run_here("--help", cwd=tmp_path)
    assert "Options may also follow the command" in done.stdout
    sub = _run_here("jobs", "--help", cwd=tmp_path)
    for option in ("--config FILE", "--db URL", "--proc-root DIR", "-v, --verbose"):
        assert option in sub.stdout


def test_no_arguments_prints_the_help_and_exits_0(tmp_path: Path) -> None:
    done = _run(cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.startswith("Usage: collectbus [OPTIONS] COMMAND [ARGS]...")
    assert "Commands:" in done.stdout
    assert done.stderr == ""
