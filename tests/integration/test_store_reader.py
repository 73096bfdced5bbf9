"""The store's read side (``collectbus.store.reader``): the rows ``collectbus host``
reads, recent and compacted, whole or only the columns asked for, with the
same errors as the full store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collectbus.errors import SchemaError, StoreError
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.hostlayout import HOUR_NS, wide_layouts
from collectbus.store.reader import StoreReader, open_reader
from collectbus.testing.hosts import make_host_sample

T0 = 1_700_000_000 * 10**9 // HOUR_NS * HOUR_NS  # an hour boundary
S = 10**9


@pytest.fixture
def stored(migrated_store_url: str) -> Iterator[tuple[Store, StoreReader]]:
    """Two hosts, 2.5 hours of samples every 5 minutes; the first two hours compacted."""
    with open_store(migrated_store_url) as store:
        for i in range(30):
            t = T0 + i * 300 * S
            store.write([make_host_sample("a", t, psi=True, cgroup=True), make_host_sample("b", t)])
        assert store.compact(now_ns=T0 + 3 * HOUR_NS, older_than_s=HOUR_NS // S).chunks > 0
        with open_reader(migrated_store_url) as reader:
            yield store, reader


def _numpy_rows(store: Store, table: str, **window: Any) -> list[tuple[Any, ...]]:
    """What the NumPy reader (``Store.read_host``) reads, as tuples; a masked
    array's ``tolist`` gives None for NULL."""
    columns = store.read_host(table, **window)
    return list(zip(*(column.tolist() for column in columns.values()), strict=True))


def test_the_reader_reads_what_the_store_reads(stored: tuple[Store, StoreReader]) -> None:
    store, reader = stored
    window = {"since_ns": T0 + 1800 * S, "until_ns": T0 + 9000 * S}
    read = reader.read_host_rows(list(wide_layouts()), **window)
    for table, wide in wide_layouts().items():
        names, rows = read[table]
        assert names == ("host", "time_ns", *wide.columns)
        assert rows == _numpy_rows(store, table, **window), table
    assert {r[0] for r in read["host_cpu"][1]} == {"a", "b"}
    # Both layers are in the window: compacted hours and recent rows.
    times = [r[1] for r in read["host_load"][1]]
    assert min(times) < T0 + 2 * HOUR_NS <= max(times)


def test_only_the_columns_asked_for_and_always_the_device_key(
    stored: tuple[Store, StoreReader],
) -> None:
    store, reader = stored
    asked = {"host_disk": ["write_sectors", "read_sectors"], "host_mem": ["mem_available_bytes"]}
    read = reader.read_host_rows(["host_disk", "host_mem", "host_load"], host="a", columns=asked)
    names, rows = read["host_disk"]
    # The device key first (the rows are sorted by it), then the columns as asked.
    assert names == ("host", "time_ns", "device", "write_sectors", "read_sectors")
    disk = wide_layouts()["host_disk"].columns
    kept = [2 + disk.index(c) for c in names[2:]]
    full = _numpy_rows(store, "host_disk", host="a")
    assert rows == [(r[0], r[1], *(r[i] for i in kept)) for r in full]
    assert read["host_mem"][0] == ("host", "time_ns", "mem_available_bytes")
    assert len(read["host_mem"][1]) == 30
    # A table the mapping does not name is read whole.
    assert read["host_load"][0] == ("host", "time_ns", *wide_layouts()["host_load"].columns)


def test_an_unknown_table_or_column_is_a_store_error_naming_it(
    stored: tuple[Store, StoreReader],
) -> None:
    _store, reader = stored
    with pytest.raises(StoreError, match="mem_nope_bytes"):
        reader.read_host_rows(["host_mem"], columns={"host_mem": ["mem_nope_bytes"]})
    with pytest.raises(StoreError, match="unknown host table 'host_nope'"):
        reader.read_host_rows(["host_nope"])


def test_the_reader_checks_the_schema_as_the_store_does(store_url: str) -> None:
    # A database without collectbus's tables: a clear error, nothing created.
    with open_reader(store_url) as reader, pytest.raises(SchemaError, match="no collectbus data"):
        reader.check_schema()
    with open_store(store_url) as store:
        store.check_schema()
        store.write([make_host_sample("h", T0)])
    with open_reader(store_url) as reader:
        reader.check_schema()
        assert [h["name"] for h in reader.hosts()] == ["h"]


def test_a_database_that_cannot_be_opened_fails_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-folder' / 'collectbus.db'}"
    with pytest.raises(StoreError, match="no-such-folder"):
        open_reader(url)
