"""The metric sources' exposition: names, types, values, and promtool's verdict."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import REGISTRY
from tests.unit.serve.serve_helpers import parse, promtool_check, value

from collectbus.bus import CollectionBus
from collectbus.clock import NS_PER_S, FakeClock
from collectbus.collectors.base import CollectContext
from collectbus.records import CallRecord, CollectionEvent, Record
from collectbus.serve import default_sources, metrics_registry
from collectbus.serve.metrics.bushealth import BusHealthSource
from collectbus.serve.metrics.callstats import CallStatsSource
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.testing.hosts import make_host_sample

T0 = 1_700_000_000 * NS_PER_S


@pytest.fixture
def store(migrated_sqlite_url: str) -> Iterator[Store]:
    with open_store(migrated_sqlite_url) as s:
        yield s


def _fill(store: Store) -> None:
    store.write(
        [
            CallRecord(
                handler="get_user",
                qualname="app.get_user",
                host="h",
                pid=1,
                thread_id=1,
                started_ns=T0 + i,
                elapsed_ns=2_000_000 * (i + 1),
                error_type="KeyError" if i == 0 else None,
            )
            for i in range(3)
        ]
    )
    store.write(
        [
            CollectionEvent(
                source="host", host="h", started_ns=T0, duration_ns=5_000_000, status="ok"
            )
        ]
    )
    for i in range(3):
        store.write([make_host_sample("node1", T0 + i * 10 * NS_PER_S)])


def _exposition(store: Store, clock: FakeClock) -> str:
    registry = metrics_registry(default_sources(store, clock=clock))
    return generate_latest(registry).decode()


def test_every_family_has_help_type_and_conventional_names(store: Store) -> None:
    _fill(store)
    clock = FakeClock(start_ns=T0 + 25 * NS_PER_S)
    text = _exposition(store, clock)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["collectbus_calls"].type == "counter"
    assert families["collectbus_call_duration_seconds"].type == "histogram"
    assert families["collectbus_collections"].type == "counter"
    assert families["collectbus_collection_duration_seconds"].type == "histogram"
    assert families["collectbus_last_collection_timestamp_seconds"].type == "gauge"
    assert families["collectbus_host_cpu_busy_ratio"].type == "gauge"
    for name in families:
        assert f"# HELP {name}" in text
        assert f"# TYPE {name}" in text
    samples = parse(text)
    assert value(samples, "collectbus_calls_total", handler="get_user", outcome="ok") == 2
    assert value(samples, "collectbus_calls_total", handler="get_user", outcome="error") == 1
    assert value(samples, "collectbus_call_duration_seconds_count", handler="get_user") == 3
    assert value(samples, "collectbus_call_duration_seconds_sum", handler="get_user") == 0.012
    # 2, 4 and 6 ms: two at or below 5 ms, three at or below 10 ms.
    bucket = "collectbus_call_duration_seconds_bucket"
    assert value(samples, bucket, handler="get_user", le="0.005") == 2
    assert value(samples, bucket, handler="get_user", le="0.01") == 3
    assert value(samples, bucket, handler="get_user", le="+Inf") == 3
    assert value(samples, "collectbus_last_collection_timestamp_seconds", source="host") == (
        (T0 + 5_000_000) / NS_PER_S
    )
    # The global registry is left alone.
    assert "collectbus_calls" not in {f.name for f in REGISTRY.collect()}


def test_host_gauges_are_the_latest_rates_of_each_host(store: Store) -> None:
    _fill(store)
    samples = parse(_exposition(store, FakeClock(start_ns=T0 + 25 * NS_PER_S)))
    # make_host_sample's CPU: 40 % busy, 30 % user, 10 % system, 5 % iowait.
    assert value(samples, "collectbus_host_cpu_busy_ratio", host="node1") == pytest.approx(0.4)
    assert value(
        samples, "collectbus_host_cpu_mode_ratio", host="node1", mode="user"
    ) == pytest.approx(0.3)
    assert value(samples, "collectbus_host_sample_timestamp_seconds", host="node1") == (
        T0 / NS_PER_S + 20
    )
    assert value(samples, "collectbus_host_memory_available_bytes", host="node1") > 0


def test_a_host_without_samples_in_the_window_is_left_out(store: Store) -> None:
    _fill(store)
    samples = parse(_exposition(store, FakeClock(start_ns=T0 + 3600 * NS_PER_S)))
    assert not [k for k in samples if k[0].startswith("collectbus_host_")]


def test_bus_health_counters_and_lag(store: Store) -> None:
    class One:
        name = "one"

        def collect(self, ctx: CollectContext) -> list[Record]:
            return []

    bus = CollectionBus(host="h", tiers={"fast": 3600.0})
    bus.add(One(), tier="fast")
    bus.subscribe(lambda _r: None, name="sink")
    bus.collect_now("one")
    bus.get("one")  # within the TTL: a cache hit
    samples = parse(generate_latest(metrics_registry([BusHealthSource(bus.health)])).decode())
    assert value(samples, "collectbus_bus_collector_runs_total", collector="one") == 1
    assert value(samples, "collectbus_bus_collector_errors_total", collector="one") == 0
    assert (
        "collectbus_bus_collector_skips_total",
        frozenset({("collector", "one"), ("reason", "busy")}),
    ) in samples
    assert ("collectbus_bus_subscriber_lag_seconds", frozenset({("subscriber", "sink")})) in samples
    saved = "collectbus_bus_collector_saved_total"
    assert value(samples, saved, collector="one", how="cache_hit") == 1
    assert value(samples, saved, collector="one", how="shared") == 0


def test_two_sources_with_one_metric_name_are_refused(store: Store) -> None:
    clock = FakeClock()
    with pytest.raises(ValueError, match="collectbus_calls"):
        metrics_registry([CallStatsSource(store, clock=clock), CallStatsSource(store, clock=clock)])


def test_promtool_accepts_the_exposition(store: Store) -> None:
    _fill(store)
    promtool_check(_exposition(store, FakeClock(start_ns=T0 + 25 * NS_PER_S)))
