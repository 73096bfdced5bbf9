"""The fleet's states, its sort and its one-query-per-table reading, on SQLite
with a fake clock; ``/api/hosts`` and ``/fleet`` of the server in process."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import event

from collectbus.clock import NS_PER_S, FakeClock
from collectbus.fleet.status import HostStatus, Thresholds, fleet_status, sort_hosts
from collectbus.serve import ServeApp
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.hostlatest import merged_ranges
from collectbus.testing.hosts import make_host_sample

T0 = 1_800_000_000 * NS_PER_S
S = NS_PER_S


@pytest.fixture
def store(migrated_sqlite_url: str) -> Iterator[Store]:
    with open_store(migrated_sqlite_url) as s:
        yield s


def test_states_at_the_thresholds() -> None:
    rule = Thresholds(10.0)
    assert [rule.state(a) for a in (0, 30, 30.001, 100, 100.001)] == [
        "reporting", "reporting", "late", "late", "silent"
    ]  # fmt: skip
    rule = Thresholds(10.0, silent_after_s=20.0)  # before "late" would begin: silent wins
    assert [rule.state(a) for a in (15, 25, 35)] == ["reporting", "silent", "silent"]


def test_ranges_cover_every_span_and_stay_few() -> None:
    spans = [(i * 100, i * 100 + 30) for i in range(500)] + [(5, 50), (10_000_000, 10_000_001)]
    ranges = merged_ranges(spans, limit=8)
    assert len(ranges) <= 8
    for low, high in spans:
        assert any(a <= low and high <= b for a, b in ranges), (low, high)
    assert merged_ranges([(0, 10), (5, 20), (30, 40)]) == [[0, 20], [30, 40]]


def test_one_query_per_table_whatever_the_number_of_hosts(store: Store) -> None:
    for n in range(40):
        last = T0 - (n % 7) * 20 * S  # 0 to 120 s old
        store.write([make_host_sample(f"h{n:02d}", last - k * 10 * S) for k in (2, 1, 0)])
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        statements.append(sql)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        found = fleet_status(store, Thresholds(10.0), now_ns=T0)
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert len(found) == 40
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 5, reads  # hosts, then stat, cpu, mem and load once each
    assert {h.state for h in found} == {"reporting", "late", "silent"}
    assert all(h.cpu_percent == pytest.approx(40.0) for h in found)


def test_sort_puts_hosts_without_a_figure_last() -> None:
    def status(name: str, cpu: float | None, last: int) -> HostStatus:
        return HostStatus(name, last, 0.0, "reporting", cpu, None, None)

    hosts = [status("b", 50.0, 3), status("a", None, 1), status("c", 50.0, 2), status("d", 9, 4)]
    assert [h.host for h in sort_hosts(hosts, "cpu")] == ["b", "c", "d", "a"]
    assert [h.host for h in sort_hosts(hosts, "last", top=2)] == ["a", "c"]
    assert [h.host for h in sort_hosts(hosts, "mem")] == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="unknown sort"):
        sort_hosts(hosts, "disk")


def test_api_hosts_and_the_fleet_page(store: Store) -> None:
    store.write([make_host_sample("n1", T0 - k * 10 * S) for k in (1, 0)])
    store.write([make_host_sample("n2", T0 - 45 * S)])
    app = ServeApp(store, sources=[], clock=FakeClock(start_ns=T0), host_interval_s=10.0)
    answer = app.handle("GET", "/api/hosts")
    assert answer.status == 200
    doc = json.loads(answer.body)
    assert [(h["host"], h["state"]) for h in doc["hosts"]] == [("n1", "reporting"), ("n2", "late")]
    doc = json.loads(app.handle("GET", "/api/hosts?interval=1m").body)
    assert [h["state"] for h in doc["hosts"]] == ["reporting", "reporting"]
    doc = json.loads(app.handle("GET", "/api/hosts?silent_after=40s").body)
    assert [h["state"] for h in doc["hosts"]] == ["reporting", "silent"]
    refused = app.handle("GET", "/api/hosts?sort=cpu")
    assert refused.status == 400
    assert "unknown parameter 'sort'" in json.loads(refused.body)["error"]
    page = app.handle("GET", "/fleet")
    assert page.status == 200
    assert page.body.count(b'class="tile ') == 2
    assert b'href="/?host=n2"' in page.body
    assert b'href="/fleet"' in app.handle("GET", "/").body  # linked from the dashboard
