"""``collectbus host`` computes its summary in plain Python: the same rows as
``collectbus.analysis.host.rates`` (pandas) on the same store, NULL counters,
resets, wraps, reboots and compacted hours included."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator

import pandas as pd
import pytest

from collectbus.analysis import rates
from collectbus.analysis.summary import FAMILY_NAMES, RATE_COLUMNS, store_summary
from collectbus.analysis.views import FAMILIES
from collectbus.records import HostSample
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.testing.hosts import make_host_sample

T0 = 1_700_000_000 * 10**9
S = 10**9


@pytest.fixture
def store(migrated_store_url: str) -> Iterator[Store]:
    with open_store(migrated_store_url) as s:
        yield s


def _same(store: Store, **window: object) -> list[dict[str, object]]:
    """The plain rows, checked against the pandas frame value by value."""
    plain = store_summary(store, **window)  # type: ignore[arg-type]
    frame: pd.DataFrame = rates(store, **window)  # type: ignore[arg-type]
    assert [(r["host"], r["time_ns"]) for r in plain] == list(
        zip(frame["host"], frame["time_ns"], strict=True)
    )
    for row, expected in zip(plain, frame.to_dict("records"), strict=True):
        assert list(row) == ["host", "time_ns", *RATE_COLUMNS]
        for column in RATE_COLUMNS:
            mine, theirs = row[column], expected[column]
            assert isinstance(mine, float), column
            if math.isnan(theirs):
                assert math.isnan(mine), (column, row["time_ns"])
            else:
                # Equal to the last bits, but for the order of a sum's terms.
                assert mine == pytest.approx(theirs, rel=1e-12, abs=1e-9), column
    return plain


def _net(sample: HostSample, rx_bytes: int | None) -> HostSample:
    return dataclasses.replace(
        sample, net=(sample.net[0], sample.net[1]._replace(rx_bytes=rx_bytes))
    )


def test_steady_hosts_and_a_window(store: Store) -> None:
    for i, t in enumerate([T0, T0 + S, T0 + 4 * S, T0 + 4 * S + S // 2, T0 + 9 * S]):
        store.write([make_host_sample("a", t, seed=i), make_host_sample("b", t + 3, cpus=4)])
    rows = _same(store)
    assert len(rows) == 10
    assert not math.isnan(float(str(rows[1]["cpu_percent"])))
    _same(store, host="b", since_ns=T0 + 2 * S)
    _same(store, since_ns=T0 + S, until_ns=T0 + 5 * S)
    assert _same(store, host="nobody") == []


def test_null_counters_wraps_and_resets(store: Store) -> None:
    """A NULL counter makes the steps into and out of it NULL; wraps count, drops reset."""
    values = [2**32 - 1_000, 500, None, 2**40, 2**40 - 10, 2**40 + 90, 1_000, 999_000]
    for i, rx in enumerate(values):
        store.write([_net(make_host_sample("a", T0 + i * S), rx)])
    rows = _same(store)
    rx = [r["net_rx_bytes_per_s"] for r in rows]
    assert rx[1] == 1_500  # wrapped
    assert math.isnan(float(str(rx[2])))  # into the NULL
    assert math.isnan(float(str(rx[3])))  # and out of it
    assert rx[5] == 100


def test_reboots_missing_devices_and_clamped_ticks(store: Store) -> None:
    boot = (T0 // S) - 3600
    store.write([make_host_sample("a", T0, boot_time_s=boot, disks=("sda", "sdb"))])
    store.write([make_host_sample("a", T0 + S, boot_time_s=boot, disks=("sda",))])
    store.write([make_host_sample("a", T0 + 2 * S, boot_time_s=boot, disks=("sda", "sdb"))])
    store.write([make_host_sample("a", T0 + 3 * S, boot_time_s=(T0 // S) - 1800)])
    store.write([make_host_sample("a", T0 + 4 * S, boot_time_s=(T0 // S) - 1799)])
    first, second = make_host_sample("a", T0 + 5 * S), make_host_sample("a", T0 + 6 * S)
    total = second.cpu[0]
    second = dataclasses.replace(
        second, cpu=(total._replace(iowait=first.cpu[0].iowait - 1), *second.cpu[1:])
    )
    store.write([first])
    store.write([second])
    only_loop = make_host_sample("a", T0 + 7 * S, disks=("loop0",), ifaces=("lo",))
    store.write([dataclasses.replace(only_loop, mem=None)])
    rows = _same(store)
    # The first sample, and the reboot, have no CPU rate.
    assert [math.isnan(float(str(r["cpu_percent"]))) for r in rows][:4] == [
        True, False, False, True,
    ]  # fmt: skip
    assert rows[-1]["time_ns"] == T0 + 7 * S  # only excluded devices: no disk or net figure
    assert math.isnan(float(str(rows[-1]["disk_read_bytes_per_s"])))


def test_compacted_hours_read_the_same(store: Store) -> None:
    for i in range(0, 7200, 600):
        store.write([make_host_sample("a", T0 + i * S), make_host_sample("b", T0 + i * S)])
    assert store.compact(now_ns=T0 + 5 * 3600 * S, older_than_s=0).chunks > 0
    store.write([make_host_sample("a", T0 + 7300 * S)])  # a recent row beside the chunks
    assert len(_same(store)) == 25
    _same(store, since_ns=T0 + 1800 * S, until_ns=T0 + 4000 * S)


def test_empty_store(store: Store) -> None:
    assert _same(store) == []


def test_family_names_are_the_views_families() -> None:
    assert tuple(FAMILIES) == FAMILY_NAMES
