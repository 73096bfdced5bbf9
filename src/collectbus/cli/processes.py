"""``collectbus collect processes``: the top processes by CPU % and by memory, now.

Two readings ``--interval`` apart (CPU % is the CPU time used between them,
as top computes it), then one row per process of either top. Nothing is
stored: the process collector's records live on the bus
(README, "Collection-bus users").
"""

from __future__ import annotations

import time

import click

from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.output import duration_option, format_option, iso_utc, render
from collectbus.collectors.base import CollectContext
from collectbus.collectors.process.collector import ProcessCollector
from collectbus.errors import CollectError
from collectbus.records import ProcessSample

#: The columns of every format, in order.
COLUMNS = (
    "pid",
    "user",
    "cpu_percent",
    "rss_bytes",
    "read_bytes",
    "write_bytes",
    "threads",
    "cpu_rank",
    "mem_rank",
    "name",
    "command",
)
_TITLES = {
    "cpu_percent": "CPU %",
    "rss_bytes": "RSS",
    "read_bytes": "read",
    "write_bytes": "written",
    "cpu_rank": "#cpu",
    "mem_rank": "#mem",
}


@click.command("processes")
@click.option(
    "--top",
    type=click.IntRange(1, 10_000),
    default=None,
    metavar="N",
    help="Processes in each top, by CPU % and by RSS (default: [collectors.processes] top, 10).",
)
@click.option(
    "--interval",
    callback=duration_option,
    default="1s",
    show_default=True,
    metavar="TIME",
    help="Time between the two readings that CPU % is measured over.",
)
@format_option
@pass_cli
def collect_processes(cli: CliContext, top: int | None, interval: float, fmt: str) -> None:
    """Read the processes twice, INTERVAL apart, and print the top by CPU % and by RSS.

    \b
    One row per process in either top: pid, user, cpu_percent (100 = one CPU
    kept busy), rss_bytes, read_bytes and write_bytes (storage I/O; null when
    /proc/PID/io cannot be read), threads, cpu_rank and mem_rank (its place in
    each top, null when not in it), name and command. --format json: an array
    of these rows, each with the host and the time (RFC 3339 UTC).
    """
    config = cli.config()
    collector = ProcessCollector(
        config.collectors.host.proc_root, top=top or config.collectors.processes.top
    )
    ctx = CollectContext(host=config.host)
    collector.collect(ctx)
    time.sleep(interval)
    ctx = CollectContext(host=config.host)
    (sample,) = collector.collect(ctx)
    if not isinstance(sample, ProcessSample):
        raise CollectError("processes", "the process collector returned no sample")
    for problem in ctx.problems:
        click.echo(f"collectbus: warning: {problem}", err=True)
    when = iso_utc(sample.time_ns)
    rows = [
        {"host": sample.host, "time": when, **row._asdict()}
        if fmt == "json"
        else {**row._asdict(), "cpu_percent": _rounded(row.cpu_percent)}
        for row in sample.processes
    ]
    if fmt == "json":
        render(rows, fmt, columns=("host", "time", *COLUMNS))
        return
    title = (
        f"top processes: {sample.host} ({sample.seen} processes,"
        f" {sample.vanished} exited while read)"
    )
    render(rows, fmt, columns=COLUMNS, title=title, headers=_TITLES)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
