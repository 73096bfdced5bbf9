"""Rendering rows as a table, JSON or CSV, and parsing time windows."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, NoReturn, TypeVar

import click

from collectbus.cli.exitcodes import EXIT_PARTIAL
from collectbus.cli.table import PIPE_WIDTH, console_width, plain_table

if TYPE_CHECKING:
    from rich.console import Console

from collectbus import timefmt
from collectbus.timefmt import iso_utc as iso_utc  # the commands import it from here

FORMATS = ("table", "json", "csv")

#: Where ``--no-header`` is noted, in the click context's ``meta``.
_NO_HEADER = "collectbus.no_header"


def _note_no_header(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[_NO_HEADER] = True


def format_options(help_text: str = "Output format.") -> Callable[[FC], FC]:
    """``--format table|json|csv`` and ``--no-header`` (tables and CSV: rows only)."""

    def attach(command: FC) -> FC:
        command = click.option(
            "--no-header",
            is_flag=True,
            expose_value=False,
            callback=_note_no_header,
            help="Tables and CSV: the rows only, without the column titles (and a table's title).",
        )(command)
        return click.option(
            "--format",
            "fmt",
            type=click.Choice(FORMATS),
            default="table",
            show_default=True,
            help=help_text,
        )(command)

    return attach


format_option = format_options()


def _no_header() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(_NO_HEADER))


Row = Mapping[str, object]

FC = TypeVar("FC", bound=Callable[..., object] | click.Command)

#: The shortest interval a command accepts: below it, reading /proc is all the host does.
MIN_INTERVAL_S = 0.01


def duration_option(_ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """A click callback: seconds from ``30s``, ``5m``, ``500ms``."""
    if value is None:
        return None
    from collectbus.configfile import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    if param.name == "interval" and seconds < MIN_INTERVAL_S:
        raise click.BadParameter(f"an interval is at least {MIN_INTERVAL_S * 1000:g} ms")
    return seconds


def parse_time(value: str, *, now_ns: int) -> int:
    """:func:`collectbus.timefmt.parse_time`; a time it cannot read is a usage error."""
    try:
        return timefmt.parse_time(value, now_ns=now_ns)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def time_window(since: str, until: str) -> tuple[int, int]:
    """``--since`` and ``--until`` as nanoseconds, checked to be in order
    (:func:`collectbus.timefmt.time_window`); a bad window is a usage error."""
    try:
        return timefmt.time_window(since, until)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def iso(ns: int | None) -> str:
    """Local time with seconds and its zone, for tables (:func:`collectbus.timefmt.iso_local`)."""
    if ns is None:
        return ""
    return timefmt.iso_local(ns)


def when(ns: int | None, fmt: str) -> str | None:
    """A time for ``fmt``: local with its zone in a table, RFC 3339 UTC in JSON and CSV."""
    if ns is None:
        return "" if fmt == "table" else None
    return iso(ns) if fmt == "table" else iso_utc(ns)


#: Integer columns that are identifiers, not amounts: no thousands separator.
_IDENTIFIERS = frozenset({"pid", "id", "seq", "job_id"})


def _cell(value: object, column: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"  # as qstat -Q and sinfo print them
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:,.2f}" if abs(value) < 1e15 else f"{value:.3g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if column in _IDENTIFIERS else f"{value:,}"
    return str(value)


def _json_value(value: object) -> object:
    """``value`` for JSON and CSV: a NaN or infinite float, at any depth, is None (null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_json_value(v) for v in value)
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def json_array(rows: Sequence[object]) -> str:
    """A JSON array with one row per line: valid JSON, easy to read and to
    grep, and written by the C encoder (``indent`` would take Python's own,
    several times slower on thousands of rows). NaN is refused, as everywhere."""
    if not rows:
        return "[]"
    encode = json.JSONEncoder(default=str, allow_nan=False).encode
    return "[\n  " + ",\n  ".join(encode(row) for row in rows) + "\n]"


def render(
    rows: Sequence[Row],
    fmt: str,
    *,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    console: Console | None = None,
) -> None:
    """Print rows in the chosen format to standard output.

    ``headers`` gives shorter column titles for the table; JSON and CSV keep
    the column names, which are stable.
    """
    cols = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    if fmt == "json":
        data = [{c: _json_value(r.get(c)) for c in cols} for r in rows]
        click.echo(json_array(data))
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        if not _no_header():
            writer.writeheader()
        for r in rows:
            writer.writerow({c: _json_value(r.get(c)) for c in cols})
        click.echo(buf.getvalue(), nl=False)
    else:
        _table(rows, cols, title, headers or {}, console)


def _table(
    rows: Sequence[Row],
    cols: Sequence[str],
    title: str | None,
    headers: Mapping[str, str],
    console: Console | None,
) -> None:
    """A rich table; drawn without rich when it is simple (:mod:`collectbus.cli.table`)."""
    bare = _no_header()
    if bare:
        title = None
    titles = [headers.get(c, c) for c in cols]
    right = [bool(rows) and _numeric(rows[0].get(c)) for c in cols]
    cells = [[_cell(r.get(c), c) for c in cols] for r in rows]
    size = console_width(sys.stdout) if console is None else None
    if size is not None and not bare:
        text = plain_table(cells, titles, right, title=title, width=size[0], styled=size[1])
        if text is not None:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, show_edge=False, header_style="bold", show_header=not bare)
    for name, is_right in zip(titles, right, strict=True):
        table.add_column(name, justify="right" if is_right else "left")
    for row in cells:
        # Text, not markup: a cell holding "[b]" or ":smile:" is shown as it is.
        table.add_row(*(Text(text) for text in row))
    if console is None:
        # Piped output is read by people too (less, a log): never squeeze it to 80 columns.
        console = Console(width=None if sys.stdout.isatty() else PIPE_WIDTH)
    console.print(table)


def _numeric(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def collection_rows(latest: Sequence[Row], fmt: str) -> list[dict[str, object]]:
    """Rows of ``collection_log`` as ``daemon status`` and ``db status`` show them:
    details an object in JSON, ``key=value, ...`` in a table or CSV."""
    return [
        {
            "started": when(int(str(r["started_ns"])), fmt),
            "source": r["source"],
            "status": r["status"],
            "records": r["records"],
            "duration_ms": int(str(r["duration_ns"])) / 1e6,
            "error": r["error"],
            "details": r["details"] if fmt == "json" else details_text(r["details"]),
        }
        for r in latest
    ]


def item_rows(document: Mapping[str, object], prefix: str = "") -> list[dict[str, object]]:
    """A JSON document as ``item,value`` rows for CSV: nested keys joined with dots,
    list entries numbered from 1 (``tables.host_cpu``, ``latest_collections.1.source``)."""
    rows: list[dict[str, object]] = []
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            rows += item_rows(value, f"{name}.")
        elif isinstance(value, list | tuple):
            for n, entry in enumerate(value, 1):
                if isinstance(entry, Mapping):
                    rows += item_rows(entry, f"{name}.{n}.")
                else:
                    rows.append({"item": f"{name}.{n}", "value": entry})
        else:
            rows.append({"item": name, "value": None if isinstance(value, Mapping) else value})
    return rows


def details_text(details: object) -> str:
    """What a collection noted, ``key=value, ...``, for a table."""
    if not isinstance(details, dict):
        return ""
    return ", ".join(f"{k}={v}" for k, v in details.items())


def partly_done(what: str) -> NoReturn:
    """One line saying what was not done, then exit 4 (partly done): the rest was done."""
    click.echo(f"collectbus: partly done: {what}", err=True)
    sys.exit(EXIT_PARTIAL)
