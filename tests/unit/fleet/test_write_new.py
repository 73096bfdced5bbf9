"""``Store.write_new``: a collection delivered again is not written again."""

from __future__ import annotations

import pytest

from collectbus.records import CollectionEvent, Record
from collectbus.store import open as open_store
from collectbus.testing.hosts import make_host_sample

S = 10**9


def _collection(host: str, t: int) -> list[Record]:
    event = CollectionEvent(
        source="host", host=host, started_ns=t, duration_ns=1, status="ok", records=1
    )
    return [make_host_sample(host, t), event]


def test_replays_are_no_ops(migrated_sqlite_url: str) -> None:
    a, b, c = _collection("n1", 10 * S), _collection("n2", 10 * S), _collection("n1", 11 * S)
    with open_store(migrated_sqlite_url) as store:
        assert store.write_new([a, b, a]) == (2, 1)  # the same collection twice in one batch
        assert store.write_new([a, c]) == (1, 1)
        assert store.write_new([a, b, c]) == (0, 3)
        assert len(store.collection_log()) == 3
        cpu = store.read_host_rows(["host_cpu"])["host_cpu"][1]
    assert len(cpu) == 3 * 3  # cpu, cpu0, cpu1 per sample


def test_a_collection_without_one_event_is_refused(migrated_sqlite_url: str) -> None:
    with open_store(migrated_sqlite_url) as store:
        with pytest.raises(ValueError, match="one CollectionEvent, not 0"):
            store.write_new([[make_host_sample("n1", S)]])
        assert store.collection_log() == []
