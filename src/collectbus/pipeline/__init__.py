"""The pipeline: collectors, the bus and the store writer, wired from a config.

:class:`Pipeline` is what ``collectbus run`` (foreground), ``collectbus daemon``
(background) and ``collectbus serve --collect`` (in the server's process) run:
a :class:`~collectbus.bus.CollectionBus` with the configured collectors, and
one subscriber, :class:`~collectbus.pipeline.sink.StoreSink`, that writes every
collection (its records and its ``collection_log`` entry) to the store in one
transaction, and compacts old samples from time to time.

When the store cannot be reached at start (``wait_for_store``), the pipeline
collects all the same: the sink keeps the collections and tries again, as it
does when the store goes away later, and brings the schema up to date at the
first connection. A schema newer than this collectbus stops the pipeline.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from collectbus.bus import CollectionBus
from collectbus.clock import NS_PER_S, Clock, SystemClock
from collectbus.collectors.base import Collector
from collectbus.collectors.host.collector import FAMILIES
from collectbus.collectors.host.filters import FilterConfig
from collectbus.collectors.run import CommandRunner
from collectbus.collectors.slurm.collector import SlurmSettings
from collectbus.config import Config, PbsConfig, SlurmConfig, database_url
from collectbus.errors import SchemaError
from collectbus.pipeline.sink import StoreSink
from collectbus.plugins import load_collector
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.retention import RetentionLimits
from collectbus.store.store import make_engine
from collectbus.urls import mask_url

#: The bus gives a PBS or Slurm collection this long past its commands' timeouts.
PBS_TIMEOUT_MARGIN_S = 10.0
#: The most commands one Slurm collection runs (jobs: squeue, sacct twice, scontrol).
SLURM_COMMANDS = 4


@dataclass(frozen=True, slots=True)
class Summary:
    """What a run did, for the closing table of ``collectbus run``."""

    duration_s: float
    collections: int
    samples: int
    errors: int
    skips: int
    drops: int
    failed_writes: int
    #: Collections still waiting in the retry buffer, or dropped from it.
    unwritten: int
    database: str


def slurm_settings(config: SlurmConfig) -> SlurmSettings:
    """The Slurm collectors' settings from the ``[collectors.slurm]`` section.

    The config is read here, where collectors are built, so that the
    collectors never import the config (docs/architecture.md, "Import rules").
    """
    return SlurmSettings(
        cluster=config.cluster,
        bin_dir=config.bin_dir,
        ssh_host=config.ssh_host,
        timeout_s=config.timeout,
        accounting=config.accounting,
        sacct_lookback_s=config.sacct_lookback,
        users=tuple(config.users),
        states=tuple(config.states),
    )


def host_collector_options(config: Config) -> dict[str, object]:
    """The host collector's keyword arguments from ``[collectors.host]``."""
    host = config.collectors.host
    return {
        "proc_root": host.proc_root,
        "sys_root": host.sys_root,
        "cgroup": host.cgroup,
        "cgroup_root": host.cgroup_root,
        "filters": FilterConfig(
            disk_include=tuple(host.disk_include),
            disk_exclude=tuple(host.disk_exclude),
            disk_partitions=host.disk_partitions,
            net_include=tuple(host.net_include),
            net_exclude=tuple(host.net_exclude),
            max_devices=host.max_devices,
        ),
    }


def host_family_groups(intervals: Mapping[str, float]) -> list[tuple[tuple[str, ...], float]]:
    """The families of ``intervals`` grouped by interval, each group in
    :data:`~collectbus.collectors.host.collector.FAMILIES` order, fastest first."""
    groups: dict[float, list[str]] = {}
    for family in FAMILIES:
        if family in intervals:
            groups.setdefault(intervals[family], []).append(family)
    return [(tuple(groups[every]), every) for every in sorted(groups)]


def add_host_collectors(
    bus: CollectionBus, config: Config, *, interval_s: float | None = None
) -> list[str]:
    """Put the host collectors of ``[collectors.host]`` on ``bus``; their names.

    One collector per interval of ``families`` (``host-cpu`` at 1 s,
    ``host-mem+vmstat`` at 10 s), each reading only its families' files, and
    ``host`` for the families left, at ``interval_s`` (``run --interval``),
    else ``interval``, else the tier's. Each file is then read once per tick
    of its own collector, whatever the number of subscribers (the bus shares
    each collection). docs/architecture.md, "The bus".
    """
    host = config.collectors.host
    options = host_collector_options(config)
    make = load_collector("host")
    names = []
    for families, every in host_family_groups(host.families):
        collector = make(**options, families=families)
        bus.add(collector, tier=host.tier, interval=every, timeout=host.timeout)
        names.append(collector.name)
    rest = [f for f in FAMILIES if f not in host.families]
    if rest:
        bus.add(
            make(**options, families=rest, name="host"),
            tier=host.tier,
            interval=interval_s or host.interval,
            timeout=host.timeout,
        )
        names.append("host")
    return names


@dataclass(frozen=True, slots=True)
class Scheduled:
    """A scheduler collector and how the bus runs it."""

    collector: Collector
    tier: str
    interval: float
    timeout: float


def scheduler_collectors(
    config: Config,
    *,
    entities: Collection[str] | None = None,
    runner: CommandRunner | None = None,
) -> list[Scheduled]:
    """The PBS and Slurm collectors of the enabled ``[collectors.pbs]`` and
    ``[collectors.slurm]`` sections, one per entity of their ``intervals``
    (only those of ``entities``, e.g. ``{"jobs"}``, if given).

    Each bus timeout is past the commands' own deadlines, so that their
    clearer error wins: a PBS collection runs one command, a Slurm jobs
    collection up to :data:`SLURM_COMMANDS`. The collectors run their
    commands through ``runner`` if given (e.g. one with its own environment),
    else each through a local runner with the section's timeout.
    """
    pbs, slurm = config.collectors.pbs, config.collectors.slurm
    sections: list[tuple[str, PbsConfig | SlurmConfig, Callable[[str], Collector], float]] = []
    if pbs.enabled:
        options = pbs.settings()
        sections.append(
            (
                "pbs",
                pbs,
                lambda name: load_collector(name)(**options, runner=runner),
                pbs.timeout + PBS_TIMEOUT_MARGIN_S,
            )
        )
    if slurm.enabled:
        settings = slurm_settings(slurm)
        sections.append(
            (
                "slurm",
                slurm,
                lambda name: load_collector(name)(settings, runner=runner),
                slurm.timeout * SLURM_COMMANDS + PBS_TIMEOUT_MARGIN_S,
            )
        )
    out: list[Scheduled] = []
    for scheduler, section, make, timeout in sections:
        for entity, every in section.intervals.model_dump().items():
            if entities is None or entity in entities:
                out.append(Scheduled(make(f"{scheduler}-{entity}"), section.tier, every, timeout))
    return out


class Pipeline:
    """The bus, its collectors and the store writer, built from a config.

    The store is opened and migrated at once (a failure is raised), unless
    ``wait_for_store``: then only a bad URL or a schema newer than this
    collectbus is raised, and a store that cannot be reached yet is an outage
    of :class:`StoreSink`, which migrates once it is reachable. A schema
    error found later stops :meth:`run`, which raises it.
    """

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        store: Store | None = None,
        interval_s: float | None = None,
        wait_for_store: bool = False,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        timeout = config.store.statement_timeout
        if store is not None:
            self.store = store
        elif wait_for_store:
            self.store = Store(
                make_engine(
                    database_url(config),
                    statement_timeout_s=timeout,
                    **config.store.engine_options(),
                ),
                statement_timeout_s=timeout,
            )
        else:
            self.store = open_store(
                database_url(config), statement_timeout_s=timeout, **config.store.engine_options()
            )
        self._stop: threading.Event | None = None
        self.sink = StoreSink(
            self.store,
            clock=self.clock,
            compact_after_s=config.store.compact_after,
            compact_every_s=config.store.compact_every,
            retention=RetentionLimits(
                job_history_days=config.retention.job_history_days,
                snapshot_days=config.retention.snapshot_days,
                jobs_days=config.retention.jobs_days,
                collection_log_days=config.retention.collection_log_days,
                quarantine_days=config.retention.quarantine_days,
            ),
            retention_every_s=config.retention.every,
            migrate=wait_for_store and store is None,
            on_fatal=self._halt,
            scrub=config.privacy.scrub,
        )
        if wait_for_store:
            # Reachable now: migrated before collecting starts. Not reachable:
            # the outage is logged, and the sink tries again as collections come.
            self.sink.flush()
            if self.sink.fatal is not None:
                self.store.close()
                raise self.sink.fatal
        self.bus = CollectionBus(
            host=config.host,
            clock=self.clock,
            tiers=config.bus.tiers,
            jitter=config.bus.jitter,
            workers=config.bus.workers,
        )
        host_cfg = config.collectors.host
        if host_cfg.enabled:
            add_host_collectors(self.bus, config, interval_s=interval_s)
        for entry in scheduler_collectors(config):
            self.bus.add(
                entry.collector, tier=entry.tier, interval=entry.interval, timeout=entry.timeout
            )
        inventory_cfg = config.collectors.host_inventory
        if inventory_cfg.enabled:
            self.bus.add(
                load_collector("host-inventory")(
                    proc_root=host_cfg.proc_root, sys_root=host_cfg.sys_root
                ),
                tier=inventory_cfg.tier,
                timeout=inventory_cfg.timeout,
            )
        processes_cfg = config.collectors.processes
        if processes_cfg.enabled:
            self.bus.add(
                load_collector("processes")(proc_root=host_cfg.proc_root, top=processes_cfg.top),
                tier=processes_cfg.tier,
                interval=processes_cfg.interval,
                timeout=processes_cfg.timeout,
            )
        self.subscription = self.bus.subscribe(
            self.sink,
            name="store",
            maxsize=config.store.queue_size,
            policy="drop_oldest",
        )
        self._started_ns = 0

    def start(self) -> None:
        self._started_ns = self.clock.monotonic_ns()
        self.bus.start()

    def stop(self) -> None:
        """Stop collecting, write what is queued (until the deadline), close."""
        self.bus.stop(deadline=self.config.bus.stop_deadline)
        self.sink.flush()
        self.store.close()

    def run(self, stop: threading.Event, duration_s: float | None = None) -> Summary:
        """Run until ``stop`` is set or ``duration_s`` has passed, then stop.

        Raises the sink's fatal :class:`SchemaError`, which sets ``stop``.
        """
        self._stop = stop
        self.start()
        try:
            if duration_s is None:
                stop.wait()
            else:
                stop.wait(duration_s)
        finally:
            self.stop()
        if self.sink.fatal is not None:
            raise self.sink.fatal
        return self.summary()

    def _halt(self, _err: SchemaError) -> None:
        if self._stop is not None:
            self._stop.set()

    def summary(self) -> Summary:
        health = self.bus.health()
        collectors = health.collectors
        return Summary(
            duration_s=(self.clock.monotonic_ns() - self._started_ns) / NS_PER_S,
            collections=self.sink.written_collections,
            samples=self.sink.written_records,
            errors=sum(c.errors for c in collectors),
            skips=sum(c.skips + c.backoff_skips for c in collectors),
            drops=sum(s.dropped for s in health.subscribers),
            failed_writes=self.sink.failed_writes,
            unwritten=self.sink.pending + self.sink.lost_collections,
            database=mask_url(self.store.url),
        )
