"""``collectbus daemon start|stop|status|run``."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.output import format_option, render
from collectbus.daemon import PidInfo, process_alive, read_pid_file, run_daemon
from collectbus.errors import DaemonError

EXIT_NOT_RUNNING = 3


@click.group()
def daemon() -> None:
    """Collect in the background; the PID file names the host and user."""


def _pid_path(cli: CliContext) -> Path:
    return Path(cli.config().daemon.pid_file).absolute()


def _live(path: Path) -> PidInfo | None:
    info = read_pid_file(path)
    if info is None:
        return None
    if not info.local:
        raise DaemonError(
            f"{path}: belongs to a daemon on host {info.host} (pid {info.pid})",
            hint="run this command on that host",
        )
    if process_alive(info.pid):
        return info
    click.echo(f"collectbus: removing stale PID file {path} (pid {info.pid} is gone)", err=True)
    path.unlink(missing_ok=True)
    return None


@daemon.command()
@click.option(
    "--wait", default=10.0, show_default=True, help="Seconds to wait for the daemon to come up."
)
@pass_cli
def start(cli: CliContext, wait: float) -> None:
    """Start the daemon in the background."""
    config = cli.config()
    path = _pid_path(cli)
    running = _live(path)
    if running is not None:
        raise DaemonError(
            f"already running (pid {running.pid}, started by {running.user} on {running.host})",
            hint="collectbus daemon stop, then start again",
        )
    argv = [sys.executable, "-m", "collectbus"]
    if cli.config_path:
        argv += ["--config", str(Path(cli.config_path).absolute())]
    if cli.db_url:
        argv += ["--db", cli.db_url]
    if cli.proc_root:
        argv += ["--proc-root", cli.proc_root]
    argv += ["-v", "daemon", "run"]
    log_path = Path(config.daemon.log_file).absolute()
    env = {**os.environ, "COLLECTBUS_PID_FILE": str(path), "COLLECTBUS_LOG_FILE": str(log_path)}
    with log_path.open("ab") as log_file:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        info = read_pid_file(path)
        if info is not None and info.pid == proc.pid:
            click.echo(f"started (pid {proc.pid}); log: {log_path}")
            return
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise DaemonError(f"the daemon exited at start: {tail[0]}", hint=f"see {log_path}")
        time.sleep(0.05)
    raise DaemonError(f"the daemon did not come up within {wait:g} s", hint=f"see {log_path}")


@daemon.command()
@click.option("--timeout", default=15.0, show_default=True, help="Seconds to wait after SIGTERM.")
@pass_cli
def stop(cli: CliContext, timeout: float) -> None:
    """Stop the daemon with SIGTERM; it writes what it holds and exits."""
    path = _pid_path(cli)
    info = _live(path)
    if info is None:
        click.echo("not running", err=True)
        sys.exit(EXIT_NOT_RUNNING)
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(info.pid):
            path.unlink(missing_ok=True)
            click.echo(f"stopped (pid {info.pid})")
            return
        time.sleep(0.05)
    raise DaemonError(
        f"pid {info.pid} is still running {timeout:g} s after SIGTERM",
        hint=f"kill -KILL {info.pid}; committed data is safe",
    )


@daemon.command()
@format_option
@pass_cli
def status(cli: CliContext, fmt: str) -> None:
    """Whether the daemon runs, since when, and its latest collections."""
    path = _pid_path(cli)
    info = _live(path)
    if info is None:
        click.echo("not running", err=True)
        sys.exit(EXIT_NOT_RUNNING)
    started = dt.datetime.fromtimestamp(info.started).astimezone().isoformat(timespec="seconds")
    rows: list[dict[str, object]] = [
        {"item": "state", "value": "running"},
        {"item": "pid", "value": info.pid},
        {"item": "host", "value": info.host},
        {"item": "user", "value": info.user},
        {"item": "started", "value": started},
        {"item": "uptime", "value": f"{time.time() - info.started:.0f} s"},
        {"item": "database", "value": info.database},
        {"item": "pid file", "value": str(path)},
    ]
    render(rows, fmt, columns=("item", "value"))


@daemon.command("run")
@pass_cli
def run_foreground(cli: CliContext) -> None:
    """Run the daemon in the foreground (for systemd or a container)."""
    logging.getLogger("collectbus").setLevel(logging.INFO)
    sys.exit(run_daemon(cli.config()))
