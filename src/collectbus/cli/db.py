"""``collectbus db``: create, migrate, inspect and compact the store."""

from __future__ import annotations

import click

from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.output import duration_option, format_option, render


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
@format_option
@pass_cli
def status(cli: CliContext, fmt: str) -> None:
    """Schema revision and row counts."""
    store = cli.read_store(check_schema=False)
    try:
        info = store.status()
    finally:
        store.close()
    rows: list[dict[str, object]] = [
        {"item": "database", "value": store.url},
        {"item": "revision", "value": info.get("revision") or "none: run collectbus db init"},
        {"item": "head", "value": info.get("head")},
    ]
    counts = info.get("tables") or {}
    if isinstance(counts, dict):
        rows += [{"item": f"rows in {name}", "value": n} for name, n in counts.items()]
    render(rows, fmt, columns=("item", "value"))


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
