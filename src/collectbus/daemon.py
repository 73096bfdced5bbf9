"""The daemon: wiring the bus to the store, and running it in the background.

:class:`Pipeline` is what both ``collectbus run`` (foreground) and
``collectbus daemon`` (background) run: a :class:`~collectbus.bus.CollectionBus`
with the configured collectors, and one subscriber, :class:`StoreSink`, that
writes every collection (its records and its ``collection_log`` entry) to the
store in one transaction, and compacts old samples from time to time.

The PID file is JSON and records the PID, host, user and start time, so a
second ``start`` can tell "already running" from a stale file left by a
killed daemon (or one on another host sharing the folder).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collectbus.bus import CollectionBus, Result
from collectbus.clock import NS_PER_S, Clock, SystemClock
from collectbus.config import Config, database_url, mask_url
from collectbus.errors import DaemonError, StoreError
from collectbus.plugins import load_collector
from collectbus.store import Store
from collectbus.store import open as open_store

log = logging.getLogger("collectbus.daemon")


class StoreSink:
    """A bus subscriber that writes each collection to the store.

    One collection is one transaction: a crash loses at most the collection
    being written. A write that fails (full disk, database down) is logged in
    one line and counted; the bus goes on, and earlier data stays committed.
    """

    def __init__(
        self, store: Store, *, clock: Clock, compact_after_s: float, compact_every_s: float
    ) -> None:
        self.store = store
        self.clock = clock
        self.compact_after_s = compact_after_s
        self.compact_every_ns = int(compact_every_s * NS_PER_S)
        self._next_compact_ns = clock.monotonic_ns() + self.compact_every_ns
        self.written_collections = 0
        self.written_records = 0
        self.failed_writes = 0
        self.last_error: str | None = None
        self.compactions = 0

    def __call__(self, result: Result) -> None:
        if result.stale:
            # A stale result repeats data that is stored already; keep only its log entry.
            batch: tuple[Any, ...] = (result.event,)
        else:
            batch = (*result.records, result.event)
        try:
            self.store.write(batch)
        except StoreError as err:
            self.failed_writes += 1
            self.last_error = str(err)
            log.error("store: %s", err)
            return
        self.written_collections += 1
        self.written_records += len(batch) - 1
        if self.clock.monotonic_ns() >= self._next_compact_ns:
            self._next_compact_ns = self.clock.monotonic_ns() + self.compact_every_ns
            self.compact()

    def compact(self) -> None:
        try:
            self.store.compact(older_than_s=self.compact_after_s)
            self.compactions += 1
        except StoreError as err:
            self.last_error = str(err)
            log.error("store: compaction failed: %s", err)


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
    database: str


class Pipeline:
    """The bus, its collectors and the store writer, built from a config."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        store: Store | None = None,
        interval_s: float | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.store = store or open_store(database_url(config))
        self.bus = CollectionBus(
            host=config.host,
            clock=self.clock,
            tiers=config.bus.tiers,
            jitter=config.bus.jitter,
            workers=config.bus.workers,
        )
        host_cfg = config.collectors.host
        if host_cfg.enabled:
            self.bus.add(
                load_collector("host")(proc_root=host_cfg.proc_root),
                tier=host_cfg.tier,
                interval=interval_s or host_cfg.interval,
                timeout=host_cfg.timeout,
            )
        self.sink = StoreSink(
            self.store,
            clock=self.clock,
            compact_after_s=config.store.compact_after,
            compact_every_s=config.store.compact_every,
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
        self.store.close()

    def run(self, stop: threading.Event, duration_s: float | None = None) -> Summary:
        """Run until ``stop`` is set or ``duration_s`` has passed, then stop."""
        self.start()
        try:
            if duration_s is None:
                stop.wait()
            else:
                stop.wait(duration_s)
        finally:
            self.stop()
        return self.summary()

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
            database=mask_url(self.store.url),
        )


# ------------------------------------------------------------------ PID file


@dataclass(frozen=True, slots=True)
class PidInfo:
    pid: int
    host: str
    user: str
    started: float
    database: str

    @property
    def local(self) -> bool:
        return self.host == socket.gethostname()


def read_pid_file(path: Path) -> PidInfo | None:
    """The PID file's content, or None when there is none."""
    try:
        data = json.loads(path.read_text())
        return PidInfo(
            pid=int(data["pid"]),
            host=str(data["host"]),
            user=str(data["user"]),
            started=float(data["started"]),
            database=str(data.get("database", "")),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DaemonError(
            f"{path}: unreadable PID file ({err})", hint=f"remove {path} if no daemon is running"
        ) from err


def process_alive(pid: int) -> bool:
    """True when ``pid`` runs and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state is the first field after the parenthesised command name.
    return stat[stat.rfind(")") + 2 :][:1] != "Z"


def write_pid_file(path: Path, database: str) -> None:
    """Create the PID file for this process; refuse if a live daemon owns it."""
    existing = read_pid_file(path)
    if existing is not None and existing.pid != os.getpid():
        if not existing.local:
            raise DaemonError(
                f"{path}: belongs to a daemon on host {existing.host} (pid {existing.pid})",
                hint="use another pid_file on shared folders",
            )
        if process_alive(existing.pid):
            raise DaemonError(f"already running (pid {existing.pid}, started by {existing.user})")
        log.warning("removing stale PID file %s (pid %d is gone)", path, existing.pid)
        path.unlink(missing_ok=True)
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "user": getpass.getuser(),
        "started": time.time(),
        "database": database,
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(info) + "\n")
    try:
        # link() fails if another daemon created the file in the meantime.
        os.link(tmp, path)
    except FileExistsError as err:
        raise DaemonError(f"{path}: another daemon started at the same time") from err
    finally:
        tmp.unlink(missing_ok=True)


def run_daemon(config: Config) -> int:
    """Run the pipeline in this process until SIGTERM or SIGINT."""
    pid_path = Path(config.daemon.pid_file)
    pipeline = Pipeline(config)
    write_pid_file(pid_path, mask_url(pipeline.store.url))
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    log.info(
        "collectbus daemon started, pid %d, database %s", os.getpid(), mask_url(pipeline.store.url)
    )
    try:
        summary = pipeline.run(stop)
    finally:
        with contextlib.suppress(OSError):
            info = read_pid_file(pid_path)
            if info is not None and info.pid == os.getpid():
                pid_path.unlink()
    log.info(
        "collectbus daemon stopped: %d collections, %d write failures",
        summary.collections,
        summary.failed_writes,
    )
    return 0
