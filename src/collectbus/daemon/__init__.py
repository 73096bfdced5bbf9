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
    url = database_url(config)
    lock = PidLock(Path(config.daemon.pid_file), mask_url(url))
    try:
        pipeline = Pipeline(config, wait_for_store=True)
        log.info("collectbus daemon started, pid %d, database %s", os.getpid(), mask_url(url))
        summary = pipeline.run(stop)
    finally:
        lock.release()
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
