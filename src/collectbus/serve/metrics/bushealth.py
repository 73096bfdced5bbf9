"""``/metrics`` for the bus that ``collectbus serve --collect`` runs in process.

Each collector's and subscriber's figures from
:meth:`~collectbus.bus.CollectionBus.health`: runs, errors, skips and drops are
counters (the bus keeps them since it was created), lags and queue lengths are
gauges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from collectbus.bus.health import BusHealth
from collectbus.clock import NS_PER_S


def _counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=labels)


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class BusHealthSource:
    """The in-process bus's health, per collector and per subscriber."""

    name = "bus health"

    def __init__(self, health: Callable[[], BusHealth]) -> None:
        self.health = health

    def _families(self) -> dict[str, CounterMetricFamily | GaugeMetricFamily]:
        c, s = ["collector"], ["subscriber"]
        families: list[CounterMetricFamily | GaugeMetricFamily] = [
            _counter("collectbus_bus_collector_runs_total", "Collections started.", c),
            _counter("collectbus_bus_collector_errors_total", "Collections that raised.", c),
            _counter("collectbus_bus_collector_timeouts_total", "Collections that timed out.", c),
            _counter(
                "collectbus_bus_collector_skips_total",
                "Ticks skipped: the previous collection was still running (busy) "
                "or the collector was backing off after a failure (backoff).",
                [*c, "reason"],
            ),
            _counter(
                "collectbus_bus_collector_saved_total",
                "Collections saved by sharing one: get() answered from the cache (cache_hit), "
                "callers that joined a collection under way (joined), results offered to "
                "more than one subscriber (shared).",
                [*c, "how"],
            ),
            _gauge(
                "collectbus_bus_collector_lag_seconds",
                "How late the last scheduled collection started after its tick.",
                c,
            ),
            _gauge(
                "collectbus_bus_collector_consecutive_failures",
                "Failed collections in a row (0 after a success).",
                c,
            ),
            _counter("collectbus_bus_subscriber_delivered_total", "Results delivered.", s),
            _counter(
                "collectbus_bus_subscriber_dropped_total",
                "Results dropped by the subscriber's queue policy.",
                s,
            ),
            _counter("collectbus_bus_subscriber_errors_total", "Times the callback raised.", s),
            _gauge("collectbus_bus_subscriber_queued", "Results waiting in the queue.", s),
            _gauge(
                "collectbus_bus_subscriber_lag_seconds",
                "Age of the oldest result still queued (0 when the queue is empty).",
                s,
            ),
        ]
        return {f.name: f for f in families}

    def describe(self) -> Iterable[Metric]:
        return list(self._families().values())

    def collect(self) -> Iterable[Metric]:
        health = self.health()
        f = self._families()
        for col in health.collectors:
            labels = [col.name]
            f["collectbus_bus_collector_runs"].add_metric(labels, col.runs)
            f["collectbus_bus_collector_errors"].add_metric(labels, col.errors)
            f["collectbus_bus_collector_timeouts"].add_metric(labels, col.timeouts)
            f["collectbus_bus_collector_skips"].add_metric([col.name, "busy"], col.skips)
            f["collectbus_bus_collector_skips"].add_metric([col.name, "backoff"], col.backoff_skips)
            saved = f["collectbus_bus_collector_saved"]
            saved.add_metric([col.name, "cache_hit"], col.cache_hits)
            saved.add_metric([col.name, "joined"], col.joined)
            saved.add_metric([col.name, "shared"], col.shared)
            if col.lag_ns is not None:
                f["collectbus_bus_collector_lag_seconds"].add_metric(labels, col.lag_ns / NS_PER_S)
            f["collectbus_bus_collector_consecutive_failures"].add_metric(
                labels, col.consecutive_failures
            )
        for sub in health.subscribers:
            labels = [sub.name]
            f["collectbus_bus_subscriber_delivered"].add_metric(labels, sub.delivered)
            f["collectbus_bus_subscriber_dropped"].add_metric(labels, sub.dropped)
            f["collectbus_bus_subscriber_errors"].add_metric(labels, sub.errors)
            f["collectbus_bus_subscriber_queued"].add_metric(labels, sub.queued)
            f["collectbus_bus_subscriber_lag_seconds"].add_metric(labels, sub.lag_ns / NS_PER_S)
        return list(f.values())
