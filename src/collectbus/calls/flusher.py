"""Writing recorded calls to a shared store from a background thread.

Many processes can write their calls to the database a collectbus daemon
uses: each opens the store by the same URL and flushes its own collector.
Rows carry the host and the process id. SQLite serialises the writers (each
flush is one ``BEGIN IMMEDIATE`` transaction, waiting up to the busy
timeout); PostgreSQL takes them concurrently, through ``COPY``::

    store = collectbus.store.open(os.environ["COLLECTBUS_DB_URL"])
    with CallFlusher(calls, store, every=5.0):
        serve_forever()
    # stopping flushes what is left

A flush that fails (database down, disk full) is logged in one line and
counted; the same calls are offered again at the next flush, as long as the
history still holds them (:attr:`CallRecorder.flush_missed` counts the rest).
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from collectbus.calls.recorder import CallRecorder, RecordWriter
from collectbus.errors import CollectBusError

log = logging.getLogger("collectbus.calls")


class CallFlusher:
    """Calls ``collector.flush_to(store)`` every ``every`` seconds, and once more on stop."""

    def __init__(self, collector: CallRecorder, store: RecordWriter, *, every: float = 5.0) -> None:
        if every <= 0:
            raise ValueError(f"every must be positive, got {every}")
        self.collector = collector
        self.store = store
        self.every = every
        self.flushes = 0
        self.written = 0
        self.failures = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def flush(self) -> int:
        """Flush now; return the calls written (0 when the write failed)."""
        try:
            written = self.collector.flush_to(self.store)
        except CollectBusError as err:
            self.failures += 1
            self.last_error = str(err)
            log.error("calls: flush failed: %s", err)
            return 0
        self.flushes += 1
        self.written += written
        return written

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.flush()

    def start(self) -> None:
        """Start flushing in a daemon thread."""
        if self._thread is not None:
            raise RuntimeError("the flusher is already started")
        self._thread = threading.Thread(target=self._run, name="collectbus-calls", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and flush what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.flush()

    def __enter__(self) -> CallFlusher:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
