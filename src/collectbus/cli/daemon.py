"""``collectbus daemon start|stop|status|run``."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.exitcodes import EXIT_NOT_RUNNING
from collectbus.cli.output import (
    collection_rows,
    duration_option,
    format_option,
    item_rows,
    render,
    when,
)
from collectbus.clock import NS_PER_S
from collectbus.errors import DaemonError, SchemaError, StoreError
from collectbus.pidfile import make_parent, running, wait_released

if TYPE_CHECKING:
    from collectbus.store import Store


@click.group()
def daemon() -> None:
    """Collect in the background; the PID file names the host and user."""


def _pid_path(cli: CliContext) -> Path:
    return Path(cli.config().daemon.pid_file).absolute()


def _log_path(cli: CliContext) -> Path:
    return Path(cli.config().daemon.log_file).absolute()


def _not_running(path: Path, fmt: str = "table", log_path: Path | None = None) -> None:
    """Say so, naming the PID file looked at, and exit 3."""
    if fmt in ("json", "csv"):
        state = {"state": "stopped", "pid_file": str(path)}
        if log_path is not None:
            state["log_file"] = str(log_path)
        if fmt == "json":
            click.echo(json.dumps(state, indent=2))
        else:
            render(item_rows(state), "csv")
    click.echo(f"not running (no daemon holds {path})", err=True)
    sys.exit(EXIT_NOT_RUNNING)


def _store_url(cli: CliContext) -> str | None:
    """An absolute ``--db`` for the daemon when the store is a relative SQLite
    path, so that the PID file names the same file from any folder."""
    from sqlalchemy.engine import make_url

    url = make_url(cli.config().store.url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if Path(url.database).is_absolute():
        return None
    absolute = url.set(database=str(Path(url.database).absolute()))
    return absolute.render_as_string(hide_password=False)


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
    nats = config.sink.nats
    try:
        if nats is None or nats.local_store:
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
    db_url = _store_url(cli) or cli.db_url
    if db_url:
        argv += ["--db", db_url]
    if cli.proc_root:
        argv += ["--proc-root", str(Path(cli.proc_root).absolute())]
    argv += ["-v", "daemon", "run"]
    log_path = Path(config.daemon.log_file).absolute()
    make_parent(log_path, "log file")
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
        _not_running(path)
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
    """Whether the daemon runs, since when, its files and its latest collections.

    The latest collections are read from the database the daemon writes (its
    PID file names it), whatever --db says. JSON and CSV times are RFC 3339
    UTC; the CSV has one item,value row per fact of the JSON, the collections
    as latest_collections.N.FIELD.
    """
    path = _pid_path(cli)
    info = running(path)
    if info is None:
        _not_running(path, fmt, _log_path(cli))
        return
    state: dict[str, object] = {
        "state": "running",
        "pid": info.pid,
        "host": info.host,
        "user": info.user,
        "started": when(int(info.started * NS_PER_S), fmt),
        "uptime_s": round(time.time() - info.started),
        "database": info.database,
        "pid_file": str(path),
        "log_file": str(_log_path(cli)),
    }
    latest: list[dict[str, object]] = []
    try:
        store = _daemon_store(cli, info.database)
        try:
            latest = store.collection_log(limit=5)
        finally:
            store.close()
    except StoreError as err:
        click.echo(f"collectbus: warning: cannot read the latest collections: {err}", err=True)
    collections = collection_rows(latest, fmt)
    if fmt == "json":
        state["latest_collections"] = collections
        click.echo(json.dumps(state, indent=2, default=str))
        return
    if fmt == "csv":
        render(item_rows({**state, "latest_collections": collections}), fmt)
        return
    rows = [{"item": k, "value": str(v) if k == "pid" else v} for k, v in state.items()]
    render(rows, fmt, columns=("item", "value"))
    if collections and fmt == "table":
        render(collections, "table", title="latest collections", headers={"duration_ms": "ms"})


def _daemon_store(cli: CliContext, database: str) -> Store:
    """The store the daemon writes: the database its PID file names (its password,
    masked there, from this configuration), else the configured one."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from collectbus.urls import mask_url

    settings = cli.store_settings()
    if not database or database == mask_url(settings.url):
        return cli.read_store()
    try:
        url = make_url(database)
    except ArgumentError:
        return cli.read_store()
    if url.password == "***":  # the mask mask_url writes
        url = url.set(password=None)
    # The same configuration file, for the password file; the daemon's database.
    named = CliContext(
        config_path=cli.config_path, db_url=url.render_as_string(hide_password=False)
    )
    return named.read_store()


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
