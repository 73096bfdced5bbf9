"""host_inventory: a document is stored only when it changed, per host; PSI, uptime and cgroup rows round-trip."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from collectbus.analysis import families
from collectbus.records import HostInventory
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.testing.hosts import make_host_sample

T0 = 1_700_000_000 * 10**9
S = 10**9


@pytest.fixture
def store(migrated_store_url: str) -> Iterator[Store]:
    s = open_store(migrated_store_url)
    yield s
    s.close()


def _inventory(host: str, time_ns: int, disks: int) -> HostInventory:
    document = {
        "cpu": {"threads": 2},
        "disks": [{"name": f"sd{chr(97 + i)}"} for i in range(disks)],
    }
    return HostInventory(host=host, time_ns=time_ns, document=json.dumps(document, sort_keys=True))


def _rows(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM host_inventory")).scalar_one())


def test_only_changes_are_stored(store: Store) -> None:
    store.write([_inventory("a", T0, 1)])
    store.write([_inventory("a", T0 + 300 * S, 1)])  # the same: not stored
    store.write([_inventory("b", T0 + 300 * S, 1)])  # another host: stored
    assert _rows(store) == 2
    store.write([_inventory("a", T0 + 600 * S, 2)])  # a disk added
    store.write([_inventory("a", T0 + 900 * S, 2)])
    assert _rows(store) == 3
    latest = store.inventories()
    assert [(r["host"], r["time_ns"]) for r in latest] == [("a", T0 + 600 * S), ("b", T0 + 300 * S)]
    assert len(json.loads(str(latest[0]["document"]))["disks"]) == 2
    history = store.inventories(host="a", history=True)
    assert [r["time_ns"] for r in history] == [T0, T0 + 600 * S]
    assert store.inventories(host="nobody") == []
    assert store.status(exact=True)["tables"]["host_inventory"] == 3  # type: ignore[index]


def test_new_sources_are_stored_and_compacted(store: Store) -> None:
    samples = [make_host_sample("a", T0 + i * S, psi=True, cgroup=True) for i in range(5)]
    for sample in samples:
        store.write([sample])
    store.compact(now_ns=T0 + 5 * 3600 * S, older_than_s=0)
    tables = families.store_tables(store)
    psi = families.psi(tables)
    assert len(psi) == 5
    assert psi["psi_cpu_some_percent"].iloc[1:].round(6).tolist() == [2.0] * 4
    cgroup = families.cgroup(tables)
    assert cgroup["cpu_usage_cores"].iloc[1:].round(6).tolist() == [0.5] * 4
    assert cgroup["cpu_limit_cores"].tolist() == [2.0] * 5
    uptime = store.read_host("uptime")
    assert uptime["uptime_s"].tolist() == [s.uptime.uptime_s for s in samples if s.uptime]
