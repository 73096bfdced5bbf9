"""The daemon: running the pipeline in the background until a signal.

:func:`run_daemon` runs a :class:`~collectbus.pipeline.Pipeline` (the bus,
its collectors and the store writer) in this process until SIGTERM or
SIGINT, and holds the PID file's lock (:mod:`collectbus.pidfile`) for as
long as it runs. ``collectbus daemon start`` starts it in a process of its
own; ``collectbus daemon run`` in the foreground.

When the store cannot be reached at start, the daemon collects all the same
(the pipeline waits for the store); a schema newer than this collectbus
stops it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

from collectbus.config import Config, database_url
from collectbus.fleet.connect import mask_servers
from collectbus.pidfile import PidLock
from collectbus.pipeline import Pipeline
from collectbus.urls import mask_url

log = logging.getLogger("collectbus.daemon")


def run_daemon(config: Config) -> int:
    """Run the pipeline in this process until SIGTERM or SIGINT."""
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    # Signals first: a SIGTERM that comes while the store opens still stops cleanly.
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    nats = config.sink.nats
    local_store = nats is None or nats.local_store
    url = database_url(config) if local_store else ""
    where = f"database {mask_url(url)}" if local_store else "no local database"
    if nats is not None:
        where += f", publishing to NATS {mask_servers(nats.url)} (stream {nats.stream})"
    lock = PidLock(Path(config.daemon.pid_file), mask_url(url) if local_store else "")
    try:
        pipeline = Pipeline(config, wait_for_store=True, local_store=local_store)
        log.info("collectbus daemon started, pid %d, %s", os.getpid(), where)
        summary = pipeline.run(stop)
    finally:
        lock.release()
    if pipeline.store is None or pipeline.sink is None:
        log.info("collectbus daemon stopped")
        return 0
    log.info(
        "collectbus daemon stopped: %d collections, %d write failures, %d collections not "
        "written, %d values or rows quarantined, %d collections refused",
        summary.collections,
        summary.failed_writes,
        summary.unwritten,
        pipeline.store.quarantined,
        pipeline.sink.refused_collections,
    )
    return 0
