"""``collectbus record -- CMD``: host metrics of every host while CMD runs.

CMD's exit code is collectbus's exit code (128 + N when a signal N killed
it; 127 when it could not be started). Ctrl-C, SIGTERM and SIGHUP are passed
on to CMD, and the result is written whatever way CMD ends. When standard
input is not a terminal CMD runs in a process group of its own and gets the
signal through collectbus; at a terminal it stays in the foreground group,
where Ctrl-C reaches it directly, and only SIGTERM and SIGHUP are passed on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import click

from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.exitcodes import EXIT_NOT_STARTED
from collectbus.cli.output import duration_option
from collectbus.errors import RecordError
from collectbus.recording import Recorder, TimeSeriesData, write
from collectbus.recording.hosts import parse_hosts
from collectbus.store import Store

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@click.command(context_settings={"ignore_unknown_options": False})
@click.option(
    "--hosts",
    "hosts_arg",
    metavar="H1,H2|@FILE",
    help="Hosts to sample: names (ssh aliases) or @FILE with one per line. "
    "Default: this host. localhost and this host's name are read locally.",
)
@click.option(
    "--interval",
    callback=duration_option,
    default="1s",
    show_default=True,
    metavar="TIME",
    help="Sample every TIME.",
)
@click.option(
    "--out",
    "out_dir",
    default=".",
    show_default=True,
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="Folder for the result file timeseries-<UTC time>.json.",
)
@click.option(
    "--max-samples",
    default=3600,
    show_default=True,
    type=click.IntRange(min=1),
    metavar="N",
    help="Samples kept per host; beyond it the oldest are dropped (and counted).",
)
@click.option(
    "--timeout",
    callback=duration_option,
    metavar="TIME",
    help="Per host and round (default: the interval, at least 1s).",
)
@click.option("--ssh-config", metavar="FILE", help="ssh -F FILE for the remote hosts.")
@click.option(
    "--ssh-option",
    "ssh_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Extra ssh -o setting; may be repeated.",
)
@click.option(
    "--disk-include",
    "disk_include",
    multiple=True,
    metavar="REGEX",
    help="Record only the disks whose name matches; may be repeated. Default: every disk.",
)
@click.option(
    "--disk-exclude",
    "disk_exclude",
    multiple=True,
    metavar="REGEX",
    help="Leave out the disks whose name matches (e.g. '^loop'); may be repeated.",
)
@click.option("--no-store", is_flag=True, help="Write the result file only, not the database.")
@click.argument("command", nargs=-1, required=True, metavar="-- CMD [ARGS]...")
@pass_cli
def record(
    cli: CliContext,
    hosts_arg: str | None,
    interval: float,
    out_dir: str,
    max_samples: int,
    timeout: float | None,
    ssh_config: str | None,
    ssh_options: tuple[str, ...],
    disk_include: tuple[str, ...],
    disk_exclude: tuple[str, ...],
    no_store: bool,
    command: tuple[str, ...],
) -> None:
    """Run CMD and record host metrics on every host while it runs.

    \b
    Examples:
      collectbus record -- ./run_benchmark.sh
      collectbus record --hosts node1,node2 --interval 2s --out results -- mpirun ...
      collectbus record --disk-exclude '^loop' --disk-exclude '^ram' -- ./bench
      collectbus report results/timeseries-*.json --html report.html
    """
    hosts = parse_hosts(hosts_arg) if hosts_arg else None
    for option, patterns in (("--disk-include", disk_include), ("--disk-exclude", disk_exclude)):
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as err:
                raise click.BadParameter(f"{pattern!r}: {err}", param_hint=option) from err
    for option in ssh_options:
        key, equals, value = option.partition("=")
        if not equals or not key.strip() or not value.strip():
            raise click.BadParameter(f"{option!r} is not KEY=VALUE", param_hint="--ssh-option")
    if ssh_config is not None and not Path(ssh_config).is_file():
        raise RecordError(f"--ssh-config {ssh_config}: no such file")
    out = _writable_folder(Path(out_dir))
    config = cli.config()
    store = None if no_store else cli.open_store()
    try:
        recorder = Recorder(
            hosts,
            interval=interval,
            max_samples=max_samples,
            timeout=timeout,
            store=store,
            proc_root=config.collectors.host.proc_root,
            local_names=(config.host,),
            ssh_config=ssh_config,
            ssh_options=ssh_options,
            disk_include=disk_include,
            disk_exclude=disk_exclude,
        )
        code, data = _run(recorder, command)
    finally:
        if store is not None:
            store.close()
    name = f"timeseries-{_stamp(data.start_time_ns)}.json"
    path: Path | None
    try:
        path = write(data, out / name)
    except RecordError as err:
        # The folder was writable when CMD started; the run is not thrown away.
        click.echo(f"collectbus: error: {err}", err=True)
        path = _write_fallback(data, name)
    _summary(data, path, store, recorder)
    sys.exit(code)


def _writable_folder(folder: Path) -> Path:
    """``--out``, created if missing and checked writable before CMD runs.

    A destination that cannot be written is one line and exit 1, before the
    benchmark has cost anything.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise RecordError(f"--out {folder}: cannot write there: {err.strerror or err}") from err
    return folder


def _write_fallback(data: TimeSeriesData, name: str) -> Path | None:
    """Write the result to the temporary folder, saying where; None (and one
    line) if even that fails. CMD's exit code is kept either way."""
    try:
        path = write(data, Path(tempfile.gettempdir()) / name)
    except RecordError as err:
        click.echo(f"collectbus: error: {err}", err=True)
        return None
    click.echo(f"collectbus: wrote the result to {path} instead", err=True)
    return path


def _run(recorder: Recorder, command: Sequence[str]) -> tuple[int, TimeSeriesData]:
    """Run the command while the recorder samples; its exit code and the recording."""
    interactive = sys.stdin.isatty()
    received: list[int] = []
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        if child is None or child.poll() is not None:
            return
        if interactive:
            if signum != signal.SIGINT:  # at a terminal, Ctrl-C reached CMD itself
                child.send_signal(signum)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signum)

    previous = {s: signal.signal(s, forward) for s in _FORWARDED}
    try:
        recorder.start()
        try:
            child = subprocess.Popen(list(command), process_group=None if interactive else 0)
        except OSError as err:
            click.echo(f"collectbus: error: {command[0]}: cannot run: {err.strerror}", err=True)
            code = EXIT_NOT_STARTED
        else:
            returncode = child.wait()
            code = 128 - returncode if returncode < 0 else returncode
    finally:
        data = recorder.stop() if recorder.is_running else recorder.snapshot()
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received:
        names = ", ".join(sorted({signal.Signals(s).name for s in received}))
        click.echo(f"collectbus: passed {names} on to {command[0]}", err=True)
    return code, dataclasses.replace(data, command=tuple(command), exit_code=code)


def _stamp(time_ns: int) -> str:
    when = dt.datetime.fromtimestamp(time_ns / 1e9, tz=dt.UTC)
    return when.strftime("%Y%m%dT%H%M%S.%fZ")[:-4] + "Z"


def _summary(
    data: TimeSeriesData, path: Path | None, store: Store | None, recorder: Recorder
) -> None:
    for host in data.hosts_requested:
        good = len(data.good_samples(host))
        errors = data.errors_by_host.get(host)
        line = f"collectbus: {host}: {good} samples"
        if errors is not None and errors.count:
            line += f", {errors.count} failed rounds; last: {errors.last}"
        if data.skipped_by_host.get(host):
            line += f", {data.skipped_by_host[host]} rounds skipped (still busy)"
        if data.dropped_by_host.get(host):
            line += f", {data.dropped_by_host[host]} oldest dropped (--max-samples)"
        click.echo(line, err=True)
    if store is not None:
        where = (
            store.url
            if not recorder.store_errors
            else f"{store.url} ({recorder.store_errors} failed writes)"
        )
        click.echo(f"collectbus: stored in {where}", err=True)
    if path is not None:
        click.echo(f"collectbus: result: {path}", err=True)
        click.echo(f"next: collectbus report {path} --html report.html", err=True)
