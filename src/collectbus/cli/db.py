"""``collectbus db``: create, migrate, inspect and compact the store."""

from __future__ import annotations

import json

import click

from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.output import (
    collection_rows,
    duration_option,
    format_option,
    iso,
    item_rows,
    render,
    when,
)

#: How many of the latest collections `db status` shows.
LATEST_COLLECTIONS = 5


@click.group()
def db() -> None:
    """Manage the database (SQLite file or PostgreSQL)."""


@db.command("init")
@pass_cli
def init(cli: CliContext) -> None:
    """Create the schema (safe to run again)."""
    store = cli.open_store(migrate=False)
    try:
        store.init()
        click.echo(f"initialised {store.url}")
    finally:
        store.close()


@db.command("migrate")
@pass_cli
def migrate(cli: CliContext) -> None:
    """Upgrade the schema to the newest revision."""
    store = cli.open_store(migrate=False)
    try:
        store.migrate()
        click.echo(f"{store.url} is at revision {store.status()['revision']}")
    finally:
        store.close()


@db.command("status")
@click.option(
    "--exact",
    is_flag=True,
    help="Count every table's rows (slow on large tables); by default they are estimated.",
)
@format_option
@pass_cli
def status(cli: CliContext, exact: bool, fmt: str) -> None:
    """Schema revision, rows per table (estimated unless --exact) and the latest collections.

    --format json is one object with the same keys with or without --exact:
    database, revision, head, up_to_date, rows_estimated, rows_method
    (rowid_range, planner or count), tables (name: rows), quarantine (null
    before the table exists) and latest_collections. --format csv flattens it
    to item,value rows (tables.host_cpu, latest_collections.1.source).
    """
    from collectbus.store.rowcounts import METHOD_DESCRIPTIONS

    store = cli.read_store(check_schema=False)
    latest: list[dict[str, object]] = []
    try:
        info = store.status(exact=exact)
        if info.get("up_to_date"):
            latest = store.collection_log(limit=LATEST_COLLECTIONS)
    finally:
        store.close()
    if fmt != "table":
        document = _status_document(store.url, info, latest, fmt)
        if fmt == "json":
            click.echo(json.dumps(document, indent=2, default=str, allow_nan=False))
        else:
            render(item_rows(document), fmt, columns=("item", "value"))
        return
    rows: list[dict[str, object]] = [
        {"item": "database", "value": store.url},
        {"item": "revision", "value": info.get("revision") or "none: run collectbus db init"},
        {"item": "head", "value": info.get("head")},
    ]
    counts = info.get("tables") or {}
    method = info.get("rows_method")
    if isinstance(counts, dict) and counts and method in METHOD_DESCRIPTIONS:
        rows.append({"item": "row counts", "value": METHOD_DESCRIPTIONS[method]})
        suffix = " (estimate)" if info.get("rows_estimated") else ""
        rows += [{"item": f"rows in {name}{suffix}", "value": n} for name, n in counts.items()]
    rows += _quarantine_rows(info.get("quarantine"))
    rows += [
        {
            "item": f"collection {r['started']} {r['source']}",
            "value": " ".join(
                str(part) for part in (r["status"], r["error"], r["details"]) if part
            ),
        }
        for r in collection_rows(latest, fmt)
    ]
    render(rows, fmt, columns=("item", "value"))


def _status_document(
    url: str, info: dict[str, object], latest: list[dict[str, object]], fmt: str
) -> dict[str, object]:
    """``db status`` for JSON and CSV: the same keys whether rows are counted or estimated."""
    held = info.get("quarantine")
    quarantine = None
    if isinstance(held, dict):
        quarantine = {
            "rows": held.get("rows", 0),
            "latest": [
                {
                    "stored": when(int(r["stored_ns"]), fmt),
                    "table": r["table_name"],
                    "field": r.get("field"),
                    "value": r["value"],
                    "reason": r["reason"],
                    "host": r["host"],
                    "source": r["source"],
                }
                for r in held.get("latest", [])
            ],
        }
    return {
        "database": url,
        "revision": info.get("revision"),
        "head": info.get("head"),
        "up_to_date": bool(info.get("up_to_date")),
        "rows_estimated": bool(info.get("rows_estimated")),
        "rows_method": info.get("rows_method"),
        "tables": info.get("tables") or {},
        "quarantine": quarantine,
        "latest_collections": collection_rows(latest, fmt),
    }


def _quarantine_rows(held: object) -> list[dict[str, object]]:
    """The quarantine's count and its newest entries, for ``db status``."""
    if not isinstance(held, dict):
        return []
    rows: list[dict[str, object]] = [
        {"item": "quarantined values and rows", "value": held.get("rows", 0)}
    ]
    for r in held.get("latest", []):
        where = (
            f"{r['table_name']}.{r['field']}" if r.get("field") else f"a row of {r['table_name']}"
        )
        rows.append(
            {
                "item": f"quarantined {iso(int(r['stored_ns']))} {where}",
                "value": f"{r['value']}: {r['reason']} (host {r['host'] or '-'}, "
                f"source {r['source'] or '-'})",
            }
        )
    return rows


@db.command("compact")
@click.option(
    "--older-than",
    callback=duration_option,
    metavar="TIME",
    help="Compact samples older than TIME (default: store.compact_after).",
)
@pass_cli
def compact(cli: CliContext, older_than: float | None) -> None:
    """Compact old host samples into chunks now."""
    config = cli.config()
    seconds = older_than if older_than is not None else config.store.compact_after
    store = cli.open_store()
    try:
        stats = store.compact(older_than_s=seconds)
    finally:
        store.close()
    click.echo(
        f"compacted {stats.rows:,} rows into {stats.chunks:,} chunks "
        f"({stats.merged:,} merged into existing ones), {stats.payload_bytes:,} bytes"
    )


def _days(_ctx: click.Context, _param: click.Parameter, value: float | None) -> float | None:
    if value is not None and value <= 0:
        raise click.BadParameter("a number of days is positive")
    return value


@db.command("cleanup")
@click.option(
    "--job-history-days",
    type=float,
    callback=_days,
    metavar="N",
    help="Delete job_history rows older than N days (default: retention.job_history_days).",
)
@click.option(
    "--snapshot-days",
    type=float,
    callback=_days,
    metavar="N",
    help="Delete node, queue and system snapshots older than N days (default: retention.snapshot_days).",
)
@click.option(
    "--jobs-days",
    type=float,
    callback=_days,
    metavar="N",
    help="Delete finished jobs last seen more than N days ago and with no history left "
    "(default: retention.jobs_days).",
)
@click.option(
    "--collection-log-days",
    type=float,
    callback=_days,
    metavar="N",
    help="Delete collection_log rows older than N days (default: retention.collection_log_days).",
)
@click.option(
    "--quarantine-days",
    type=float,
    callback=_days,
    metavar="N",
    help="Delete quarantine rows older than N days (default: retention.quarantine_days).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@format_option
@pass_cli
def cleanup(
    cli: CliContext,
    job_history_days: float | None,
    snapshot_days: float | None,
    jobs_days: float | None,
    collection_log_days: float | None,
    quarantine_days: float | None,
    dry_run: bool,
    fmt: str,
) -> None:
    """Delete old history, as the [retention] limits (or these flags) say.

    A job is never deleted while any of its history is kept.
    """
    from collectbus.store.retention import RetentionLimits

    retention = cli.config().retention
    limits = RetentionLimits(
        job_history_days=job_history_days or retention.job_history_days,
        snapshot_days=snapshot_days or retention.snapshot_days,
        jobs_days=jobs_days or retention.jobs_days,
        collection_log_days=collection_log_days or retention.collection_log_days,
        quarantine_days=quarantine_days or retention.quarantine_days,
    )
    store = cli.read_store()
    try:
        stats = store.cleanup(limits, dry_run=dry_run)
    finally:
        store.close()
    verb = "would delete" if dry_run else "deleted"
    rows: list[dict[str, object]] = [
        {"table": table, "rows": n, "action": verb} for table, n in stats.rows.items()
    ]
    if not rows:
        click.echo("nothing to do: no retention limit is set", err=True)
        if fmt == "json":
            click.echo("[]")
        return
    render(rows, fmt, columns=("table", "rows", "action"))
