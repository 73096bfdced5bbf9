"""``collectbus ingest``: write what a fleet's agents publish to NATS into the store."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING

import click

from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.output import duration_option
from collectbus.errors import ConfigError

if TYPE_CHECKING:
    from collectbus.fleet.ingest import Ingest, IngestStats

#: As collectbus.fleet.ingest.DEFAULT_DURABLE, which --help does not import.
DEFAULT_DURABLE = "collectbus-ingest"


@click.command()
@click.option(
    "--durable",
    default=DEFAULT_DURABLE,
    show_default=True,
    metavar="NAME",
    help="The durable consumer; ingest processes with the same name share the work.",
)
@click.option(
    "--batch",
    type=click.IntRange(1, 100_000),
    default=500,
    show_default=True,
    metavar="N",
    help="Messages fetched, and written in one transaction, at a time.",
)
@click.option(
    "--duration",
    callback=duration_option,
    default=None,
    metavar="TIME",
    help="Stop after this long (default: at SIGTERM or Ctrl-C).",
)
@pass_cli
def ingest(cli: CliContext, durable: str, batch: int, duration: float | None) -> None:
    """Consume what agents publish to NATS JetStream ([sink.nats]) into the store.

    Each batch is written in one transaction and acknowledged once committed;
    a message delivered again is not written twice. Messages that cannot be
    read go to the dead-letter subject with the reason.
    """
    from collectbus.fleet.ingest import Ingest

    config = cli.config()
    nats = config.sink.nats
    if nats is None:
        raise ConfigError(
            f"{config.source}: no [sink.nats] section: ingest reads the NATS server, stream "
            "and subjects from it",
            hint="add [sink.nats] with url and stream (README, 'A fleet')",
        )
    # Levels as the daemon's: the outages and dead letters are what an operator reads.
    logging.getLogger("collectbus").setLevel(min(logging.INFO, logging.getLogger().level))
    store = cli.open_store()
    try:
        worker = Ingest(
            nats, store, durable=durable, batch=batch, name=f"collectbus ingest {config.host}"
        )
        stats = asyncio.run(_run(worker, duration))
    finally:
        store.close()
    click.echo(
        f"ingest: {stats.received} messages received, {stats.written} collections written, "
        f"{stats.duplicates} already stored, {stats.dead_letters} dead letters, "
        f"{stats.failed_writes} failed writes",
        err=True,
    )


async def _run(worker: Ingest, duration: float | None) -> IngestStats:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
    return await worker.run(stop)
