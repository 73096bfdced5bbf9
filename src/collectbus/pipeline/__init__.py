"""The pipeline: collectors, the bus and the store writer, wired from a config.

:class:`Pipeline` is what ``collectbus run`` (foreground), ``collectbus daemon``
(background) and ``collectbus serve --collect`` (in the server's process) run:
a :class:`~collectbus.bus.CollectionBus` with the configured collectors, and
one subscriber, :class:`~collectbus.pipeline.sink.StoreSink`, that writes every
collection (its records and its ``collection_log`` entry) to the store in one
transaction, and compacts old samples from time to time.

With ``[sink.nats]``, a second subscriber publishes every collection to NATS
JetStream (:class:`~collectbus.fleet.publisher.NatsPublisher`), besides the
store or, with ``local_store = false`` and ``local_store=False`` given by the
daemon, instead of it: then no store is opened and :attr:`Pipeline.store` and
:attr:`Pipeline.sink` are None.

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
from collectbus.errors import ConfigError, SchemaError
from collectbus.fleet.publisher import NatsPublisher
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


def jobusage_collector_options(config: Config) -> dict[str, object]:
    """The job usage collector's keyword arguments from ``[collectors.jobusage]``
    (procfs from ``[collectors.host]``); its cluster must be set."""
    jobusage = config.collectors.jobusage
    if not jobusage.cluster:
        raise ConfigError(
            "collectors.jobusage.cluster: not set",
            hint="name the cluster whose jobs run on this node, as the jobs collectors name it",
        )
    return {
        "cluster": jobusage.cluster,
        "mode": jobusage.mode,
        "proc_root": config.collectors.host.proc_root,
        "cgroup_root": jobusage.cgroup_root,
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


def collects_anything(config: Config) -> bool:
    """Whether ``config`` enables a collector: a pipeline without one has nothing
    to run, and is refused before a store is opened or created."""
    c = config.collectors
    return (
        c.host.enabled
        or c.host_inventory.enabled
        or c.jobusage.enabled
        or c.processes.enabled
        or any(s.enabled and s.intervals.model_dump() for s in (c.pbs, c.slurm))
    )


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
        local_store: bool = True,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self._stop: threading.Event | None = None
        nats = config.sink.nats
        #: The NATS publisher of ``[sink.nats]``, started and stopped with the bus.
        self.publisher = (
            NatsPublisher(nats, name=f"collectbus {config.host}") if nats is not None else None
        )
        self.store: Store | None = None
        self.sink: StoreSink | None = None
        if local_store or nats is None:
            self.store, self.sink = self._store_sink(store, wait_for_store)
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
        jobusage_cfg = config.collectors.jobusage
        if jobusage_cfg.enabled:
            self.bus.add(
                load_collector("jobusage")(**jobusage_collector_options(config)),
                tier=jobusage_cfg.tier,
                interval=jobusage_cfg.interval,
                timeout=jobusage_cfg.timeout,
            )
        if self.sink is not None:
            self.bus.subscribe(
                self.sink, name="store", maxsize=config.store.queue_size, policy="drop_oldest"
            )
        if self.publisher is not None:
            self.bus.subscribe(
                self.publisher, name="nats", maxsize=config.store.queue_size, policy="drop_oldest"
            )
        self._started_ns = 0

    def _store_sink(self, store: Store | None, wait_for_store: bool) -> tuple[Store, StoreSink]:
        """The store (opened and migrated unless ``wait_for_store``) and its writer."""
        config = self.config
        timeout = config.store.statement_timeout
        if store is None and wait_for_store:
            store = Store(
                make_engine(
                    database_url(config),
                    statement_timeout_s=timeout,
                    **config.store.engine_options(),
                ),
                statement_timeout_s=timeout,
            )
            migrate = True
        else:
            if store is None:
                store = open_store(
                    database_url(config),
                    statement_timeout_s=timeout,
                    **config.store.engine_options(),
                )
            migrate = False
        sink = StoreSink(
            store,
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
            migrate=migrate,
            on_fatal=self._halt,
            scrub=config.privacy.scrub,
        )
        if wait_for_store:
            # Reachable now: migrated before collecting starts. Not reachable:
            # the outage is logged, and the sink tries again as collections come.
            sink.flush()
            if sink.fatal is not None:
                store.close()
                raise sink.fatal
        return store, sink

    def local(self) -> tuple[Store, StoreSink]:
        """The store and its writer; a ConfigError if this pipeline only publishes."""
        if self.store is None or self.sink is None:
            raise ConfigError(
                "this pipeline publishes to NATS only ([sink.nats] local_store = false)"
            )
        return self.store, self.sink

    def start(self) -> None:
        self._started_ns = self.clock.monotonic_ns()
        if self.publisher is not None:
            self.publisher.start()
        self.bus.start()

    def stop(self) -> None:
        """Stop collecting, write and publish what is queued (until the deadline), close."""
        self.bus.stop(deadline=self.config.bus.stop_deadline)
        if self.publisher is not None:
            self.publisher.close(self.config.bus.stop_deadline)
        if self.sink is not None:
            self.sink.flush()
        if self.store is not None:
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
        if self.sink is not None and self.sink.fatal is not None:
            raise self.sink.fatal
        return self.summary()

    def _halt(self, _err: SchemaError) -> None:
        if self._stop is not None:
            self._stop.set()

    def summary(self) -> Summary:
        health = self.bus.health()
        collectors = health.collectors
        sink = self.sink
        return Summary(
            duration_s=(self.clock.monotonic_ns() - self._started_ns) / NS_PER_S,
            collections=sink.written_collections if sink else 0,
            samples=sink.written_records if sink else 0,
            errors=sum(c.errors for c in collectors),
            skips=sum(c.skips + c.backoff_skips for c in collectors),
            drops=sum(s.dropped for s in health.subscribers),
            failed_writes=sink.failed_writes if sink else 0,
            unwritten=sink.pending + sink.lost_collections if sink else 0,
            database=mask_url(self.store.url) if self.store else "-",
        )
