"""``--collect`` of ``collectbus jobs``, ``job``, ``history``, ``nodes``, ``queues``
and ``analyze``: collect now, then show.

One collection of each enabled scheduler collector of the entity
(``[collectors.pbs]``, ``[collectors.slurm]``), run through a
:class:`~collectbus.bus.CollectionBus` and written by the pipeline's
:class:`~collectbus.pipeline.sink.StoreSink`: the same records, ``collection_log``
entries and job history as the daemon would store. A failed collection is one
line on standard error naming its command, and the others are still stored;
what is shown afterwards is read back from the store.

The bus's own log lines (backoff, "no good result yet") are for a daemon that
keeps going; a one-shot collection says each outcome once, here (``-v``
shows the bus's lines too). When every collection failed nothing is shown
and the command fails (exit 1); when only some did, what was stored is shown
and the command exits 4, partly done (:mod:`collectbus.cli.exitcodes`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass

import click

from collectbus.bus import CollectionBus
from collectbus.cli.context import CliContext
from collectbus.cli.output import partly_done
from collectbus.clock import SystemClock
from collectbus.errors import CollectError, ConfigError, StoreError
from collectbus.pipeline import scheduler_collectors
from collectbus.pipeline.sink import StoreSink

#: The statuses of a collection that brought nothing.
FAILED_STATUSES = frozenset({"error", "timeout"})


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one ``--collect`` did: the collections run and those that failed."""

    collections: int
    failed: tuple[str, ...]

    def finish(self) -> None:
        """After the listing: exit 4 (partly done) if some collections failed."""
        if self.failed:
            partly_done(
                f"{len(self.failed)} of {self.collections} collections failed"
                f" ({', '.join(self.failed)})"
            )


@contextlib.contextmanager
def _bus_quiet(verbose: int) -> Iterator[None]:
    """The bus's warnings silenced for a one-shot collection, unless ``-v``."""
    logger = logging.getLogger("collectbus.bus")
    previous = logger.level
    if not verbose:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


def collect_now(cli: CliContext, entities: Collection[str]) -> Outcome:
    """Collect ``entities`` (``jobs``, ``nodes``, ``queues``, ``partitions``) once and store them.

    Raises :class:`~collectbus.errors.CollectError` when every collection
    failed (each was named on standard error); else returns which failed.
    """
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
    failed: list[str] = []
    try:
        with _bus_quiet(cli.verbose):
            for entry in chosen:
                bus.add(
                    entry.collector,
                    tier=entry.tier,
                    interval=entry.interval,
                    timeout=entry.timeout,
                )
            for entry in chosen:
                result = bus.collect_now(entry.collector.name)
                sink(result)
                event = result.event
                line = f"collectbus: {event.source}: {event.status}, {event.records} records"
                click.echo(f"{line}: {event.error}" if event.error else line, err=True)
                if sink.pending:
                    raise StoreError(f"{store.url}: {event.source} not stored: {sink.last_error}")
                if event.status in FAILED_STATUSES:
                    failed.append(event.source)
    finally:
        bus.stop()
        store.close()
    if len(failed) == len(chosen):
        names = ", ".join(failed)
        raise CollectError(names, "nothing collected", hint="the reason is on the line above")
    return Outcome(collections=len(chosen), failed=tuple(failed))
