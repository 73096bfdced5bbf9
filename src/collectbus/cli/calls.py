"""``collectbus calls``: recorded calls of Python handlers, from the store.

Programs record their calls with :class:`collectbus.calls.CallRecorder` and
write them to the store with ``flush_to`` or a ``CallFlusher``; this command
reads them back: the newest calls, the slowest, the failed ones, or
statistics per handler (``--stats``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import click

from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.output import format_option, iso, iso_utc, render, time_window

if TYPE_CHECKING:
    import numpy.typing as npt

CALL_COLUMNS = (
    "time",
    "host",
    "pid",
    "thread_id",
    "handler",
    "qualname",
    "elapsed_ns",
    "error_type",
    "error_message",
    "args",
    "result",
    "traceback",
)
CALL_TABLE = ("time", "host", "pid", "handler", "elapsed_ms", "status", "args")
STATS_COLUMNS = (
    "handler",
    "calls",
    "errors",
    "total_s",
    "avg_s",
    "min_s",
    "max_s",
    "p50_s",
    "p95_s",
    "p99_s",
    "last_started",
    "last_error",
)
STATS_TABLE = (
    "handler",
    "calls",
    "errors",
    "avg_ms",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "total_s",
    "last_started",
)
HEADERS = {"elapsed_ms": "ms", "last_started": "last call"}
NS_PER_MS = 1e6


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


@click.command()
@click.option("--handler", metavar="NAME", help="Only this handler.")
@click.option("--slowest", type=click.IntRange(min=1), metavar="N", help="The N slowest calls.")
@click.option("--errors", "errors_only", is_flag=True, help="Only calls that failed.")
@click.option("--stats", "show_stats", is_flag=True, help="Statistics per handler.")
@click.option(
    "--since", default="1h", show_default=True, metavar="TIME", help="Start: 15m, 2h, an ISO time."
)
@click.option(
    "--until", default="now", show_default=True, metavar="TIME", help="End of the window."
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    metavar="N",
    default=50,
    show_default=True,
    help="The newest N calls (without --slowest or --stats).",
)
@format_option
@pass_cli
def calls(
    cli: CliContext,
    handler: str | None,
    slowest: int | None,
    errors_only: bool,
    show_stats: bool,
    since: str,
    until: str,
    limit: int,
    fmt: str,
) -> None:
    """Recorded calls: the newest, the slowest (--slowest N), the failed
    (--errors), or statistics per handler (--stats).

    Times in tables are milliseconds; JSON and CSV carry nanoseconds (calls)
    and seconds (statistics).

    The --stats percentiles (p50, p95, p99) are exact over the calls of the
    window: linear interpolation between the closest ranks, as numpy.percentile.
    aggregate show estimates its percentiles from a sketch, within 1 %.
    """
    if show_stats and slowest is not None:
        raise click.UsageError("--stats and --slowest do not go together")
    since_ns, until_ns = time_window(since, until)
    store = cli.read_store()
    try:
        if show_stats:
            timings = store.call_timings(handler=handler, since_ns=since_ns, until_ns=until_ns)
            rows = _stats_rows(timings, fmt, errors_only=errors_only)
        else:
            found = store.calls(
                handler=handler,
                since_ns=since_ns,
                until_ns=until_ns,
                errors=True if errors_only else None,
                slowest=slowest,
                limit=None if slowest is not None else limit,
            )
            rows = [_call_row(r, fmt) for r in found]
    finally:
        store.close()
    if not rows:
        click.echo(
            "no recorded calls in this window; programs write theirs with "
            "CallRecorder.flush_to(store) or CallFlusher",
            err=True,
        )
        if fmt == "json":
            click.echo("[]")
        return
    if show_stats:
        render(rows, fmt, columns=STATS_TABLE if fmt == "table" else STATS_COLUMNS, headers=HEADERS)
    else:
        render(rows, fmt, columns=CALL_TABLE if fmt == "table" else CALL_COLUMNS, headers=HEADERS)


def _call_row(row: dict[str, object], fmt: str) -> dict[str, object]:
    started, elapsed = cast(int, row["started_ns"]), cast(int, row["elapsed_ns"])
    out = dict(row)
    if fmt == "table":
        out["time"] = iso(started)
        out["elapsed_ms"] = elapsed / NS_PER_MS
        out["status"] = row["error_type"] or "ok"
    else:
        out["time"] = iso_utc(started)
    return out


def _stats_rows(
    timings: dict[str, npt.NDArray[Any]], fmt: str, *, errors_only: bool
) -> list[dict[str, object]]:
    from collectbus.calls.stats import stats_from_columns

    rows: list[dict[str, object]] = []
    for stats in stats_from_columns(
        timings["handler"], timings["started_ns"], timings["elapsed_ns"], timings["error_type"]
    ):
        if errors_only and not stats.errors:
            continue
        out: dict[str, object] = {
            name: getattr(stats, name) for name in STATS_COLUMNS if hasattr(stats, name)
        }
        started = stats.last_started_ns
        if fmt == "table":
            for field in ("avg", "min", "max", "p50", "p95", "p99"):
                out[f"{field}_ms"] = _ms(getattr(stats, f"{field}_s"))
            out["last_started"] = iso(started)
        else:
            out["last_started"] = iso_utc(started) if started is not None else None
        rows.append(out)
    return rows
