"""``/metrics`` for recorded calls and collections, from the store's tables.

- :class:`CallStatsSource`: the ``calls`` table as
  ``collectbus_calls_total{handler,outcome}`` and
  ``collectbus_call_duration_seconds{handler}``;
- :class:`CollectionsSource`: ``collection_log`` as
  ``collectbus_collections_total{source,status}``,
  ``collectbus_collection_duration_seconds{source}`` and
  ``collectbus_last_collection_timestamp_seconds{source}``.

Both count each row exactly once (:mod:`collectbus.serve.counting.tally`): the counters
start from the rows present at the server's first scrape and only grow from
there, and the histograms observe each row once, however often they are
scraped. With ``saved`` (:mod:`collectbus.serve.counting.saved`) they are kept in the
store, and a restarted server continues them from the id it had counted up
to; without, a restart is a counter reset.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric

from collectbus.clock import NS_PER_S, Clock
from collectbus.pendingids import DEFAULT_PENDING_S
from collectbus.serve.counting.saved import SavedSeries
from collectbus.serve.counting.tally import Key, Tally, Totals
from collectbus.store import Store
from collectbus.store.schema import calls, collection_log


def _outcome(values: Sequence[object]) -> Key:
    handler, returned = values
    return (str(handler), "ok" if returned else "error")


def _by_first_label(totals: dict[Key, Totals]) -> dict[str, Totals]:
    merged: dict[str, Totals] = {}
    for key, item in totals.items():
        merged.setdefault(key[0], Totals()).add(item)
    return merged


class CallStatsSource:
    """Recorded calls per handler: how many, how many failed, how long they took."""

    name = "calls"

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        pending_s: float = DEFAULT_PENDING_S,
        saved: SavedSeries | None = None,
    ) -> None:
        c = calls.c
        self.tally = Tally(
            store.engine,
            store.url,
            calls,
            keys=(c.handler, c.error_type.is_(None)),
            labels=_outcome,
            duration_ns=c.elapsed_ns,
            clock=clock,
            pending_s=pending_s,
            saved=saved,
        )

    def _families(self) -> tuple[CounterMetricFamily, HistogramMetricFamily]:
        return (
            CounterMetricFamily(
                "collectbus_calls_total",
                "Recorded calls in the store by handler and outcome (ok: returned, "
                "error: raised); each row counted once.",
                labels=["handler", "outcome"],
            ),
            HistogramMetricFamily(
                "collectbus_call_duration_seconds",
                "Wall time of the recorded calls in the store; each row observed once.",
                labels=["handler"],
            ),
        )

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        totals = self.tally.update()
        counter, histogram = self._families()
        for (handler, outcome), item in sorted(totals.items()):
            counter.add_metric([handler, outcome], float(item.count))
        for handler, item in sorted(_by_first_label(totals).items()):
            histogram.add_metric(
                [handler], item.histogram(self.tally.buckets_s), item.sum_ns / NS_PER_S
            )
        return [counter, histogram]


def _source_status(values: Sequence[object]) -> Key:
    source, status = values
    return (str(source), str(status))


class CollectionsSource:
    """Collections per source and status, their durations and the latest one."""

    name = "collections"

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        pending_s: float = DEFAULT_PENDING_S,
        saved: SavedSeries | None = None,
    ) -> None:
        c = collection_log.c
        self.tally = Tally(
            store.engine,
            store.url,
            collection_log,
            keys=(c.source, c.status),
            labels=_source_status,
            duration_ns=c.duration_ns,
            end_ns=c.started_ns + c.duration_ns,
            clock=clock,
            pending_s=pending_s,
            saved=saved,
        )

    def _families(
        self,
    ) -> tuple[CounterMetricFamily, HistogramMetricFamily, GaugeMetricFamily]:
        return (
            CounterMetricFamily(
                "collectbus_collections_total",
                "Logged collections by source and status (ok, partial, error, timeout); "
                "each row counted once.",
                labels=["source", "status"],
            ),
            HistogramMetricFamily(
                "collectbus_collection_duration_seconds",
                "Duration of the logged collections; each row observed once.",
                labels=["source"],
            ),
            GaugeMetricFamily(
                "collectbus_last_collection_timestamp_seconds",
                "When the latest logged collection of each source ended (Unix time).",
                labels=["source"],
            ),
        )

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        totals = self.tally.update()
        counter, histogram, last = self._families()
        for (source, status), item in sorted(totals.items()):
            counter.add_metric([source, status], float(item.count))
        for source, item in sorted(_by_first_label(totals).items()):
            histogram.add_metric(
                [source], item.histogram(self.tally.buckets_s), item.sum_ns / NS_PER_S
            )
            if item.last_end_ns is not None:
                last.add_metric([source], item.last_end_ns / NS_PER_S)
        return [counter, histogram, last]
