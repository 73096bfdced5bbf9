"""``--collect`` of ``collectbus jobs``, ``nodes`` and ``queues``: collect now, then show.

One collection of each enabled scheduler collector of the entity
(``[collectors.pbs]``, ``[collectors.slurm]``), run through a
:class:`~collectbus.bus.CollectionBus` and written by the pipeline's
:class:`~collectbus.pipeline.sink.StoreSink`: the same records, ``collection_log``
entries and job history as the daemon would store. A failed collection is one
line on standard error naming its command, and the others are still stored;
what is shown afterwards is read back from the store.
"""

from __future__ import annotations

from collections.abc import Collection

import click

from collectbus.bus import CollectionBus
from collectbus.cli.context import CliContext
from collectbus.clock import SystemClock
from collectbus.errors import ConfigError, StoreError
from collectbus.pipeline import scheduler_collectors
from collectbus.pipeline.sink import StoreSink


def collect_now(cli: CliContext, entities: Collection[str]) -> None:
    """Collect ``entities`` (``jobs``, ``nodes``, ``queues``, ``partitions``) once and store them."""
    config = cli.config()
    chosen = scheduler_collectors(config, entities=entities)
    if not chosen:
        raise ConfigError(
            f"{config.source}: no scheduler collector is enabled",
            hint="set enabled = true in [collectors.pbs] or [collectors.slurm]",
        )
    clock = SystemClock()
    store = cli.open_store()
    bus = CollectionBus(host=config.host, clock=clock, tiers=config.bus.tiers)
    sink = StoreSink(
        store,
        clock=clock,
        compact_after_s=config.store.compact_after,
        compact_every_s=config.store.compact_every,
        retry_buffer=1,
    )
    try:
        for entry in chosen:
            bus.add(
                entry.collector, tier=entry.tier, interval=entry.interval, timeout=entry.timeout
            )
        for entry in chosen:
            result = bus.collect_now(entry.collector.name)
            sink(result)
            event = result.event
            line = f"collectbus: {event.source}: {event.status}, {event.records} records"
            click.echo(f"{line}: {event.error}" if event.error else line, err=True)
            if sink.pending:
                raise StoreError(f"{store.url}: {event.source} not stored: {sink.last_error}")
    finally:
        bus.stop()
        store.close()
