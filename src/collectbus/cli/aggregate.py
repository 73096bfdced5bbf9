"""``collectbus aggregate``: incremental aggregates from the ``[[aggregates]]`` config.

``run`` brings every configured aggregate (or those named) up to date once,
or keeps doing so with ``--follow``; an aggregate whose source fails is
reported in one line and the others go on. ``show`` prints an aggregate's
groups and measures from the store, ``list`` the configured and stored ones,
``reset`` forgets one (``--backfill`` rebuilds it at once).
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

import click

from collectbus.aggregate import (
    AggregateSpec,
    AggregateView,
    Aggregator,
    RunOutcome,
    read_aggregates,
    run_all,
)
from collectbus.aggregate.spec import specs_from_config
from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.exitcodes import EXIT_FAILED
from collectbus.cli.output import duration_option, format_option, iso, render, when
from collectbus.errors import CollectError, ConfigError

RUN_COLUMNS = ("aggregate", "kind", "rows_read", "groups", "last_id", "mismatched", "error")


def _specs(cli: CliContext, names: tuple[str, ...]) -> list[AggregateSpec]:
    config = cli.config()
    specs = specs_from_config(config)
    if not specs:
        raise ConfigError(
            f"{config.source}: aggregates: none configured",
            hint="add an [[aggregates]] table; see src/collectbus/aggregate/sqltail/README.md",
        )
    if names:
        known = {s.name for s in specs}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(
                f"{config.source}: aggregates: no aggregate named {', '.join(unknown)}"
                f" (configured: {', '.join(sorted(known))})"
            )
        specs = [s for s in specs if s.name in names]
    return specs


def _outcome_rows(outcomes: list[RunOutcome]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for o in outcomes:
        r = o.result
        rows.append(
            {
                "aggregate": o.name,
                "kind": r.kind if r else "failed",
                "rows_read": r.rows_read if r else None,
                "groups": r.groups_written if r else None,
                "last_id": r.last_id if r else None,
                "mismatched": r.mismatched_groups if r else None,
                "error": o.error,
            }
        )
    return rows


@click.group()
def aggregate() -> None:
    """Incremental aggregates: run, show, list, reset."""


@aggregate.command("run")
@click.argument("names", nargs=-1)
@click.option("--follow", is_flag=True, help="Keep updating, every --interval.")
@click.option(
    "--interval",
    default="5s",
    show_default=True,
    callback=duration_option,
    metavar="TIME",
    help="Time between updates with --follow.",
)
@click.option("--refresh", is_flag=True, help="A full refresh: recompute, compare and repair.")
@format_option
@pass_cli
def run(
    cli: CliContext,
    names: tuple[str, ...],
    follow: bool,
    interval: float,
    refresh: bool,
    fmt: str,
) -> None:
    """Update the configured aggregates (or NAMES) from their sources."""
    specs = _specs(cli, names)
    store = cli.open_store()
    stop = threading.Event()

    def _on_term(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _on_term)
    kept: dict[str, Aggregator] = {}
    errors: dict[str, str] = {}
    try:
        while True:
            outcomes = run_all(store, specs, refresh=refresh, keep=kept, last_errors=errors)
            if not follow:
                break
            if stop.wait(interval):
                return
    finally:
        signal.signal(signal.SIGTERM, previous)
        for agg in kept.values():
            agg.close()
        store.close()
    render(_outcome_rows(outcomes), fmt, columns=RUN_COLUMNS)
    if any(o.error for o in outcomes):
        # Each failure was logged in one line as it happened; the others went on.
        sys.exit(EXIT_FAILED)


@aggregate.command("show")
@click.argument("name")
@format_option
@pass_cli
def show(cli: CliContext, name: str, fmt: str) -> None:
    """Print the groups and measures of aggregate NAME.

    The percentiles (p50, p95, p99) are estimates from a log-bucket sketch
    (DDSketch): within 1 % of a value of the group, kept incrementally. calls
    --stats computes its percentiles exactly from the rows (linear
    interpolation, as numpy.percentile), so the two may differ by that much.
    """
    store = cli.read_store()
    try:
        views = read_aggregates(store, [name])
    finally:
        store.close()
    if not views:
        raise CollectError(
            f"aggregate {name}", "nothing stored yet", hint=f"collectbus aggregate run {name}"
        )
    rows, columns, title = show_rows(views[0], fmt)
    render(rows, fmt, columns=columns, title=title if fmt == "table" else None)


def verification(view: AggregateView) -> str:
    """How far the totals are checked against their source, in words."""
    if not view.external:
        return "exact (triggers log every change)"
    repaired = f"; repaired {iso(view.repaired_ns)}" if view.repaired_ns else ""
    if not view.unverified:
        return f"verified {iso(view.verified_ns or view.updated_ns)}{repaired}"
    since = iso(view.verified_ns) if view.verified_ns else "never"
    checked = (
        f"; those made before {iso(view.checked_ns)} are in (the block sweep's last full pass)"
        if view.checked_ns and view.checked_ns != view.verified_ns
        else ""
    )
    return (
        f"UNVERIFIED (last verified {since}): deletes or edits of closed rows since then"
        f" may be missing until the block sweep or the next refresh{checked}{repaired}"
    )


def show_rows(view: AggregateView, fmt: str) -> tuple[list[dict[str, object]], list[str], str]:
    """The rows, columns and title ``show`` prints for an aggregate. Besides
    the table's title, JSON and CSV carry on every row ``verified`` (false
    while :attr:`~collectbus.aggregate.AggregateView.unverified`),
    ``verified_at``, ``checked_at`` (:attr:`~collectbus.aggregate.AggregateView.checked_ns`)
    and ``repaired_at``."""
    columns: list[str] = [*view.key_names, "count", "errors"]
    for m in view.measure_names:
        columns += [f"{m}_{s}" for s in ("mean", "min", "max", "p50", "p95", "p99")]
        if fmt != "table":
            columns += [f"{m}_n", f"{m}_sum"]
    if fmt != "table":
        columns += ["verified", "verified_at", "checked_at", "repaired_at"]
    status = {
        "verified": not view.unverified,
        "verified_at": when(view.verified_ns or None, fmt),
        "checked_at": when(view.checked_ns or None, fmt),
        "repaired_at": when(view.repaired_ns or None, fmt),
    }
    rows: list[dict[str, object]] = []
    for g in view.groups:
        row: dict[str, object] = {**g.keys, "count": g.count, "errors": g.errors, **status}
        for m, mv in g.measures.items():
            row.update(
                {
                    f"{m}_n": mv.n,
                    f"{m}_sum": mv.sum,
                    f"{m}_mean": mv.mean,
                    f"{m}_min": mv.min,
                    f"{m}_max": mv.max,
                    f"{m}_p50": mv.quantiles[0.5],
                    f"{m}_p95": mv.quantiles[0.95],
                    f"{m}_p99": mv.quantiles[0.99],
                }
            )
        rows.append(row)
    title = (
        f"{view.name}: {view.source}, up to id {view.last_id}, updated {iso(view.updated_ns)};"
        f" {verification(view)}"
    )
    return rows, columns, title


@aggregate.command("list")
@format_option
@pass_cli
def list_(cli: CliContext, fmt: str) -> None:
    """The configured aggregates and the state of each in the store."""
    config = cli.config()
    store = cli.read_store()
    try:
        stored = {v.name: v for v in read_aggregates(store)}
    finally:
        store.close()
    rows: list[dict[str, object]] = []
    configured = {a.name: a for a in config.aggregates}
    for name in sorted(set(configured) | set(stored)):
        a, v = configured.get(name), stored.get(name)
        rows.append(
            {
                "aggregate": name,
                "table": a.table if a else v.table if v else "",
                "source": (a.source or "store") if a else "(not configured)",
                "groups": len(v.groups) if v else None,
                "last_id": v.last_id if v else None,
                "runs": v.runs if v else None,
                "mismatches": v.mismatches if v else None,
                "updated": when(v.updated_ns if v else None, fmt),
            }
        )
    render(rows, fmt, columns=("aggregate", "table", "source", "groups", "last_id", "runs",
                               "mismatches", "updated"))  # fmt: skip


@aggregate.command("reset")
@click.argument("name")
@click.option("--backfill", is_flag=True, help="Rebuild the totals from the whole source now.")
@pass_cli
def reset(cli: CliContext, name: str, backfill: bool) -> None:
    """Forget aggregate NAME's totals and checkpoint."""
    (spec,) = _specs(cli, (name,))
    store = cli.open_store()
    try:
        with Aggregator(store, spec) as agg:
            result = agg.reset(backfill=backfill)
    finally:
        store.close()
    if result is None:
        click.echo(f"aggregate {name}: reset; the next run rebuilds it")
    else:
        click.echo(
            f"aggregate {name}: rebuilt from {result.rows_read:,} rows up to id {result.last_id}"
        )
