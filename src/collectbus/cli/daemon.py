"""``collectbus daemon start|stop|status|run``."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.exitcodes import EXIT_NOT_RUNNING
from collectbus.cli.output import details_text, duration_option, format_option, iso, render
from collectbus.errors import DaemonError, SchemaError, StoreError
from collectbus.pidfile import running, wait_released


@click.group()
def daemon() -> None:
    """Collect in the background; the PID file names the host and user."""


def _pid_path(cli: CliContext) -> Path:
    return Path(cli.config().daemon.pid_file).absolute()


def _not_running(fmt: str = "table") -> None:
    if fmt == "json":
        click.echo('{"state": "stopped"}')
    click.echo("not running", err=True)
    sys.exit(EXIT_NOT_RUNNING)


def _start_error(log_path: Path) -> str:
    """The daemon's own one-line error from its log, or its last line."""
    lines = log_path.read_text(errors="replace").strip().splitlines() if log_path.exists() else []
    errors = [line for line in lines if line.startswith("collectbus: error:")]
    if errors:
        return errors[-1].removeprefix("collectbus: error:").strip()
    return lines[-1] if lines else "no output"


@daemon.command()
@click.option(
    "--wait",
    callback=duration_option,
    default="10s",
    show_default=True,
    metavar="TIME",
    help="How long to wait for the daemon to come up (10s, 1m, 500ms).",
)
@pass_cli
def start(cli: CliContext, wait: float) -> None:
    """Start the daemon in the background."""
    config = cli.config()
    path = _pid_path(cli)
    current = running(path)
    if current is not None:
        raise DaemonError(
            f"already running (pid {current.pid}, started by {current.user} on {current.host})",
            hint="collectbus daemon stop, then start again",
        )
    # Check the database here, where a problem can be shown, not only in the log.
    # One that cannot be reached yet is waited for, as the daemon does when it
    # goes away later; a schema newer than collectbus stops here.
    try:
        cli.open_store().close()
    except SchemaError:
        raise
    except StoreError as err:
        click.echo(
            f"collectbus: warning: {err}; starting anyway: the daemon collects and "
            "writes once the database can be reached",
            err=True,
        )
    argv = [sys.executable, "-m", "collectbus"]
    if cli.config_path:
        argv += ["--config", str(Path(cli.config_path).absolute())]
    if cli.db_url:
        argv += ["--db", cli.db_url]
    if cli.proc_root:
        argv += ["--proc-root", str(Path(cli.proc_root).absolute())]
    argv += ["-v", "daemon", "run"]
    log_path = Path(config.daemon.log_file).absolute()
    env = {**os.environ, "COLLECTBUS_PID_FILE": str(path), "COLLECTBUS_LOG_FILE": str(log_path)}
    try:
        log_file = log_path.open("ab")
    except OSError as err:
        raise DaemonError(f"{log_path}: cannot open the log file: {err.strerror}") from err
    with log_file:
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
        info = running(path)
        if info is not None and info.pid == proc.pid:
            click.echo(f"started (pid {proc.pid}); log: {log_path}")
            return
        if proc.poll() is not None:
            raise DaemonError(
                f"the daemon exited at start: {_start_error(log_path)}", hint=f"see {log_path}"
            )
        time.sleep(0.05)
    raise DaemonError(f"the daemon did not come up within {wait:g} s", hint=f"see {log_path}")


@daemon.command()
@click.option(
    "--timeout",
    callback=duration_option,
    default="15s",
    show_default=True,
    metavar="TIME",
    help="How long to wait after SIGTERM (15s, 1m).",
)
@pass_cli
def stop(cli: CliContext, timeout: float) -> None:
    """Stop the daemon with SIGTERM; it writes what it holds and exits."""
    path = _pid_path(cli)
    info = running(path)
    if info is None:
        _not_running()
        return
    # The PID is the lock holder's own (it wrote the file under the lock), so
    # this signal cannot reach a process that merely reused an old PID.
    os.kill(info.pid, signal.SIGTERM)
    if wait_released(path, timeout):
        click.echo(f"stopped (pid {info.pid})")
        return
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
    info = running(path)
    if info is None:
        _not_running(fmt)
        return
    started = dt.datetime.fromtimestamp(info.started).astimezone().isoformat(timespec="seconds")
    state: dict[str, object] = {
        "state": "running",
        "pid": info.pid,
        "host": info.host,
        "user": info.user,
        "started": started,
        "uptime_s": round(time.time() - info.started),
        "database": info.database,
        "pid_file": str(path),
    }
    latest: list[dict[str, object]] = []
    try:
        store = cli.read_store()
        try:
            latest = store.collection_log(limit=5)
        finally:
            store.close()
    except StoreError as err:
        click.echo(f"collectbus: warning: cannot read the latest collections: {err}", err=True)
    if fmt == "json":
        state["latest_collections"] = latest
        click.echo(json.dumps(state, indent=2, default=str))
        return
    rows = [{"item": k, "value": str(v) if k == "pid" else v} for k, v in state.items()]
    render(rows, fmt, columns=("item", "value"))
    if latest and fmt == "table":
        rows = [
            {
                "started": iso(int(str(r["started_ns"]))),
                "source": r["source"],
                "status": r["status"],
                "records": r["records"],
                "ms": int(str(r["duration_ns"])) / 1e6,
                "error": r["error"],
                "details": details_text(r["details"]),
            }
            for r in latest
        ]
        render(rows, "table", title="latest collections")


@daemon.command("run")
@pass_cli
def run_foreground(cli: CliContext) -> None:
    """Run the daemon in the foreground (for systemd or a container)."""
    root = logging.getLogger()
    for handler in root.handlers:
        # A long-running log needs its times.
        handler.setFormatter(
            logging.Formatter("%(asctime)s collectbus: %(levelname)s: %(message)s")
        )
    logging.getLogger("collectbus").setLevel(logging.INFO)
    from collectbus.daemon import run_daemon

    sys.exit(run_daemon(cli.config()))
