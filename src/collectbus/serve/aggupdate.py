"""The aggregates' incremental updates, run by ``collectbus serve`` in the background.

:class:`AggregateUpdater` calls the engine's runner
(:func:`collectbus.aggregate.run_all`) every ``interval_s`` in one daemon
thread, keeping the aggregators between runs (each then reads only the rows
past its checkpoint, and a full refresh happens when its ``refresh_every``
says). A failing aggregate is logged once per distinct error, and once when
it recovers (the runner does that), counted in :meth:`status`, and never
stops the others or the server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from collectbus.aggregate import AggregateSpec, Aggregator, run_all
from collectbus.store import Store

log = logging.getLogger("collectbus.serve")


@dataclass(frozen=True, slots=True)
class UpdateStatus:
    """One aggregate's updates by this server so far."""

    runs: int = 0
    errors: int = 0
    last_error: str | None = None


class AggregateUpdater:
    """Updates ``specs`` every ``interval_s`` seconds until stopped."""

    def __init__(self, store: Store, specs: Sequence[AggregateSpec], *, interval_s: float) -> None:
        self.store = store
        self.specs = list(specs)
        self.interval_s = interval_s
        self._keep: dict[str, Aggregator] = {}
        self._last_errors: dict[str, str] = {}
        self._status = {s.name: UpdateStatus() for s in self.specs}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="aggregate-updater", daemon=True)
        self._crash: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop after the update in progress, and close the aggregators."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        for agg in self._keep.values():
            agg.close()
        self._keep.clear()

    def status(self) -> dict[str, UpdateStatus]:
        with self._lock:
            return dict(self._status)

    def run_once(self) -> None:
        """One update of every aggregate; errors are recorded, never raised."""
        try:
            outcomes = run_all(
                self.store, self.specs, keep=self._keep, last_errors=self._last_errors
            )
        except Exception as err:  # a bug must not kill the server
            # Not a reported source failure (those are CollectBusError, handled
            # by the runner): a bug. Logged with its traceback once, counted,
            # and the aggregators rebuilt on the next run.
            message = f"aggregate update failed: {type(err).__name__}: {err}"
            if message != self._crash:
                log.exception("%s", message)
            self._crash = message
            for agg in self._keep.values():
                agg.close()
            self._keep.clear()
            with self._lock:
                for name, st in self._status.items():
                    self._status[name] = UpdateStatus(st.runs + 1, st.errors + 1, message)
            return
        self._crash = None
        with self._lock:
            for outcome in outcomes:
                st = self._status.get(outcome.name, UpdateStatus())
                failed = outcome.error is not None
                self._status[outcome.name] = UpdateStatus(
                    st.runs + 1, st.errors + int(failed), outcome.error
                )

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval_s)
