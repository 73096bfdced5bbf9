"""``collectbus hosts``: every host of the store, its state and its latest figures."""

from __future__ import annotations

import time

import click

from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.output import duration_option, format_option, render, when

#: The columns, in order; JSON and CSV carry the names, tables the titles.
COLUMNS = (
    "host",
    "state",
    "last_sample",
    "age_s",
    "cpu_percent",
    "mem_used_percent",
    "load1",
)
JSON_COLUMNS = (*COLUMNS[:3], "last_sample_ns", *COLUMNS[3:])
HEADERS = {
    "last_sample": "last sample",
    "age_s": "age s",
    "cpu_percent": "cpu %",
    "mem_used_percent": "mem used %",
}


@click.command()
@click.option(
    "--sort",
    type=click.Choice(("cpu", "mem", "load", "name", "last")),
    default="name",
    show_default=True,
    help="cpu, mem, load: largest first; name: A to Z; last: the oldest last sample first.",
)
@click.option("--top", type=click.IntRange(min=1), metavar="N", help="Only the first N hosts.")
@click.option(
    "--interval",
    callback=duration_option,
    metavar="TIME",
    help="The host collector's interval (default: [collectors.host] interval, else its tier's).",
)
@click.option(
    "--silent-after",
    callback=duration_option,
    metavar="TIME",
    help="Silent past TIME without a sample (default: 10 intervals).",
)
@format_option
@pass_cli
def hosts(
    cli: CliContext,
    sort: str,
    top: int | None,
    interval: float | None,
    silent_after: float | None,
    fmt: str,
) -> None:
    """Every host of the store: last sample, state, latest CPU %, memory used %, load1.

    \b
    State, from the age of the host's last sample and the host collector's
    interval ([collectors.host] interval, else its tier's; --interval):
      reporting   at most 3 intervals old
      late        older than 3 intervals
      silent      older than 10 intervals, or than --silent-after

    CPU % is the host's busy share between its last two samples, when they
    are at most 3 intervals apart; memory used % is (total - available) of
    total; load1 that of the last sample. A figure the host did not report
    is empty (null in JSON).

    \b
    Examples:
      collectbus hosts                          every host, by name
      collectbus hosts --sort cpu --top 20      the 20 busiest
      collectbus hosts --sort last              the longest silent first
      collectbus hosts --format json            src/collectbus/cli/schemas/hosts.json
    """
    from collectbus.fleet.status import Thresholds, fleet_status, sort_hosts

    thresholds = Thresholds(interval or _configured_interval(cli), silent_after)
    with cli.read_side() as reader:
        found = fleet_status(reader, thresholds, now_ns=time.time_ns())
        url = reader.url
    if not found:
        click.echo(f"collectbus: no host samples in {url}", err=True)
        click.echo("  hint: collect some: collectbus run --duration 30s", err=True)
        if fmt == "json":
            click.echo("[]")
        return
    rows = [
        {
            "host": h.host,
            "state": h.state,
            "last_sample": when(h.last_sample_ns, fmt),
            "last_sample_ns": h.last_sample_ns,
            "age_s": round(h.age_s, 3),
            "cpu_percent": h.cpu_percent,
            "mem_used_percent": h.mem_used_percent,
            "load1": h.load1,
        }
        for h in sort_hosts(found, sort, top)
    ]
    if fmt == "table":
        title = (
            f"{len(found)} hosts: late after {thresholds.late_s:g} s without a sample,"
            f" silent after {thresholds.silent_s:g} s"
        )
        render(rows, fmt, columns=COLUMNS, headers=HEADERS, title=title)
    else:
        render(rows, fmt, columns=JSON_COLUMNS)


def _configured_interval(cli: CliContext) -> float:
    """The host collector's interval: from the light reading of the config
    file, else from the full configuration (which names what is wrong)."""
    from collectbus.configfile import host_interval

    seconds = host_interval(cli.config_path)
    if seconds is not None:
        return seconds
    host = cli.config().collectors.host
    return host.interval or cli.config().bus.tiers[host.tier]
