"""The schema follows the record layouts, and the migration creates exactly it."""

from __future__ import annotations

import subprocess
import sys

import sqlalchemy as sa

from collectbus.procfields import MEMINFO_COLUMNS, VMSTAT_COLUMNS
from collectbus.records import CpuRow, DiskRow, LoadRow, NetRow, StatRow
from collectbus.store.schema import WIDE_TABLES, host_chunks


def test_wide_tables_have_the_record_fields_as_columns() -> None:
    expected = {
        "host_cpu": CpuRow._fields,
        "host_stat": StatRow._fields,
        "host_mem": MEMINFO_COLUMNS,
        "host_vmstat": VMSTAT_COLUMNS,
        "host_disk": DiskRow._fields,
        "host_net": NetRow._fields,
        "host_load": LoadRow._fields,
    }
    for name, fields in expected.items():
        table = WIDE_TABLES[name].table
        assert [c.name for c in table.columns] == ["host_id", "time_ns", *fields]


def test_types_and_nullability() -> None:
    disk = WIDE_TABLES["host_disk"].table
    assert isinstance(disk.c.device.type, sa.Text)
    assert isinstance(disk.c.read_sectors.type, sa.BigInteger)
    # A value a column cannot hold is stored as NULL (collectbus.values): every
    # value column may be NULL, the keys never.
    assert disk.c.read_sectors.nullable
    assert disk.c.flush_ios.nullable
    assert not disk.c.device.nullable
    assert not disk.c.time_ns.nullable
    load = WIDE_TABLES["host_load"].table
    assert isinstance(load.c.load1.type, sa.Double)  # float64 in both databases
    mem = WIDE_TABLES["host_mem"].table
    assert all(mem.c[name].nullable for name in MEMINFO_COLUMNS)
    assert not mem.c.host_id.nullable
    assert not mem.c.time_ns.nullable


def test_wide_tables_have_only_a_time_index() -> None:
    for wide in WIDE_TABLES.values():
        assert [[c.name for c in ix.columns] for ix in wide.table.indexes] == [["time_ns"]]
        assert not wide.table.primary_key.columns


def test_chunks_are_unique_per_host_source_hour_and_first_time() -> None:
    uniques = [c for c in host_chunks.constraints if isinstance(c, sa.UniqueConstraint)]
    assert [[c.name for c in u.columns] for u in uniques] == [
        ["host_id", "source", "hour_start_ns", "first_ns"]
    ]


def test_the_store_does_not_import_pandas() -> None:
    code = "import sys, collectbus.store; assert 'pandas' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
