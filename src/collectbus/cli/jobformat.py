"""Shared helpers of the scheduler commands: durations, times and empty results."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Collection, Iterator, Sequence

import click

from collectbus.cli.context import CliContext
from collectbus.cli.output import iso, iso_utc
from collectbus.clock import NS_PER_S
from collectbus.errors import CollectBusError

#: Said when nothing was found and no scheduler collector is enabled.
COLLECTORS_OFF = (
    "the PBS and Slurm collectors are off by default: set enabled = true in"
    " [collectors.pbs] or [collectors.slurm], then run collectbus daemon start"
)


def duration(seconds: float | None) -> str:
    """``3d 04:05:06`` or ``00:05:06``, for tables: always hours, minutes and
    seconds, so that a column lines up and reads one way (as sacct's Elapsed)."""
    if seconds is None or seconds != seconds:  # None or NaN
        return ""
    sign = "-" if seconds < 0 else ""
    total = round(abs(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{sign}{days}d {clock}" if days else f"{sign}{clock}"


def span_s(later: object, earlier: object) -> float | None:
    """Seconds from ``earlier`` to ``later`` (nanoseconds), or None."""
    if isinstance(later, int) and isinstance(earlier, int):
        return (later - earlier) / NS_PER_S
    return None


def when(ns: object, fmt: str) -> str | None:
    """A time for a table (local) or for JSON and CSV (RFC 3339 UTC)."""
    if not isinstance(ns, int):
        return None
    return iso(ns) if fmt == "table" else iso_utc(ns)


def nothing(what: str, fmt: str, cli: CliContext | None = None, *, window: bool = True) -> None:
    """Say that there is nothing to show, on stderr, with the likeliest way to
    get some; JSON still gets a list.

    ``window``: the command has ``--since`` (nodes and queues show the latest
    rows, whatever their age). With ``cli``, the configuration says whether
    any scheduler collector is on; a configuration that cannot be read is
    not this command's error, and the hint then names both causes.
    """
    enabled: bool | None = None
    if cli is not None:
        try:
            collectors = cli.config().collectors
            enabled = collectors.pbs.enabled or collectors.slurm.enabled
        except CollectBusError:
            enabled = None
    hints = []
    if window:
        hints.append("widen --since")
    if enabled is not True:
        hints.append(COLLECTORS_OFF)
    elif not window:
        hints.append("collect them now with --collect")
    click.echo(f"collectbus: no {what} found", err=True)
    click.echo(f"  hint: {'; or '.join(hints)}", err=True)
    if fmt == "json":
        click.echo("[]")


def time_columns(
    rows: Sequence[dict[str, object]], fmt: str, names: dict[str, str]
) -> list[dict[str, object]]:
    """Rows with ``names`` (ns column -> shown column) added as readable times."""
    out = []
    for row in rows:
        shown = dict(row)
        for column, label in names.items():
            shown[label] = when(row.get(column), fmt)
        out.append(shown)
    return out


def echo_json(data: object, default: Callable[[object], object] = str) -> None:
    click.echo(json.dumps(data, indent=2, default=default))


@contextlib.contextmanager
def collecting(cli: CliContext, collect: bool, entities: Collection[str]) -> Iterator[None]:
    """``--collect``: with ``collect``, collect ``entities`` once and store them
    first (:func:`collectbus.cli.collectnow.collect_now`, imported only then);
    after the body, which shows what is stored, exit 4 (partly done) if some
    collections failed. An error in the body is raised as it is."""
    outcome = None
    if collect:
        from collectbus.cli.collectnow import collect_now

        outcome = collect_now(cli, entities)
    yield
    if outcome is not None:
        outcome.finish()
