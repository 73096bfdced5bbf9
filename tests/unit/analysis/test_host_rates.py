"""Host rates from a SQLite store: known counter rates, resets, wraps and filters."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from collectbus.analysis import rates, samples
from collectbus.analysis.host import EXCLUDED_DISKS, RATE_COLUMNS, with_boot_time
from collectbus.records import HostSample
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.testing.hosts import (
    DISK_READ_SECTORS_PER_S,
    DISK_WRITE_SECTORS_PER_S,
    NET_RX_BYTES_PER_S,
    NET_TX_BYTES_PER_S,
    make_host_sample,
)

T0 = 1_700_000_000 * 10**9
S = 10**9
# make_host_sample's disks: sda and nvme0n1 count; sda1 (partition), loop0 do not.
DISK_READ = 2 * DISK_READ_SECTORS_PER_S * 512
DISK_WRITE = 2 * DISK_WRITE_SECTORS_PER_S * 512


@pytest.fixture
def store(migrated_sqlite_url: str) -> Iterator[Store]:
    with open_store(migrated_sqlite_url) as s:
        yield s


def _row(frame: pd.DataFrame, host: str, time_ns: int) -> pd.Series:
    [index] = frame.index[(frame["host"] == host) & (frame["time_ns"] == time_ns)]
    return frame.loc[index]


def test_steady_rates_use_the_actual_sample_times(store: Store) -> None:
    times = [T0, T0 + 1 * S, T0 + 4 * S, T0 + 4 * S + S // 2]  # irregular on purpose
    for t in times:
        store.write([make_host_sample("a", t), make_host_sample("b", t + 3)])
    frame = rates(store)
    assert list(frame.columns) == ["host", "time_ns", *RATE_COLUMNS]
    assert len(frame) == 8
    first = _row(frame, "a", T0)
    assert first[["cpu_percent", "disk_read_bytes_per_s", "net_rx_bytes_per_s"]].isna().all()
    assert first["mem_used_bytes"] > 0  # gauges need no previous sample
    later = frame[frame["time_ns"] > T0 + 3]
    assert np.allclose(later["cpu_percent"], 40)
    assert np.allclose(later["cpu_user_percent"], 30)
    assert np.allclose(later["cpu_system_percent"], 10)
    assert np.allclose(later["cpu_iowait_percent"], 5)
    assert np.allclose(later["cpu_steal_percent"], 0)
    assert np.allclose(later["disk_read_bytes_per_s"], DISK_READ, rtol=1e-3)
    assert np.allclose(later["disk_write_bytes_per_s"], DISK_WRITE, rtol=1e-3)
    assert np.allclose(later["net_rx_bytes_per_s"], NET_RX_BYTES_PER_S, rtol=1e-3)  # lo left out
    assert np.allclose(later["net_tx_bytes_per_s"], NET_TX_BYTES_PER_S, rtol=1e-3)
    sample = make_host_sample("a", T0 + S)
    assert sample.mem is not None
    assert sample.load is not None
    row = _row(frame, "a", T0 + S)
    assert row["mem_used_bytes"] == sample.mem[0] - sample.mem[2]  # MemTotal - MemAvailable
    assert row["load1"] == sample.load.load1
    only_b = rates(store, host="b", since_ns=T0 + 2 * S)
    assert only_b["host"].tolist() == ["b", "b"]
    assert only_b["cpu_percent"].isna().tolist() == [True, False]  # first in the window


def _with_net(sample: HostSample, rx_bytes: int) -> HostSample:
    return dataclasses.replace(
        sample, net=(sample.net[0], sample.net[1]._replace(rx_bytes=rx_bytes))
    )


def test_a_32_bit_wrap_is_counted_and_a_large_drop_is_a_reset(store: Store) -> None:
    values = [2**32 - 1_000, 500, 2**40, 2**40 - 10, 2**40 + 90]
    for i, rx in enumerate(values):
        store.write([_with_net(make_host_sample("a", T0 + i * S), rx)])
    rx = rates(store)["net_rx_bytes_per_s"].tolist()
    assert np.isnan(rx[0])
    assert rx[1] == 1_500  # wrapped
    assert rx[2] == 2**40 - 500  # plain growth
    assert np.isnan(rx[3])  # backwards from above 2**32: a reset
    assert rx[4] == 100


def test_small_drop_of_a_net_counter_is_a_reset_not_a_wrap(store: Store) -> None:
    for i, rx in enumerate([1_000_000, 999_000, 1_099_000]):
        store.write([_with_net(make_host_sample("a", T0 + i * S), rx)])
    rx = rates(store)["net_rx_bytes_per_s"].tolist()
    assert np.isnan(rx[1])  # a re-created interface, not 4 GiB in one second
    assert rx[2] == 100_000


def test_iowait_going_back_is_clamped_not_a_wrap(store: Store) -> None:
    first = make_host_sample("a", T0)
    second = make_host_sample("a", T0 + S)
    total = second.cpu[0]
    # iowait one tick lower than before: ``man 5 proc`` says this can happen.
    second = dataclasses.replace(
        second, cpu=(total._replace(iowait=first.cpu[0].iowait - 1), *second.cpu[1:])
    )
    store.write([first])
    store.write([second])
    row = rates(store).iloc[1]
    assert row["cpu_iowait_percent"] == 0.0
    assert 30.0 < row["cpu_percent"] < 60.0  # the fake host is 40 % busy


def test_a_reboot_gives_no_rate_for_that_step(store: Store) -> None:
    boot = (T0 // S) - 3600
    store.write([make_host_sample("a", T0, boot_time_s=boot)])
    store.write([make_host_sample("a", T0 + S, boot_time_s=boot)])
    # Rebooted: new boot time, counters start again (higher than before here,
    # so only the boot time tells).
    store.write([make_host_sample("a", T0 + 3 * S, boot_time_s=(T0 // S) - 1800)])
    store.write([make_host_sample("a", T0 + 4 * S, boot_time_s=(T0 // S) - 1800)])
    # A boot time that moves by 1 s is a clock adjustment, not a reboot.
    store.write([make_host_sample("a", T0 + 6 * S, boot_time_s=(T0 // S) - 1799)])
    frame = rates(store)
    assert frame["cpu_percent"].isna().tolist() == [True, False, True, False, False]
    assert frame["disk_read_bytes_per_s"].isna().tolist() == [True, False, True, False, False]


def test_a_device_that_disappears_has_no_rate_when_it_returns(store: Store) -> None:
    with_sdb = ("sda", "sdb")
    store.write([make_host_sample("a", T0, disks=with_sdb)])
    store.write([make_host_sample("a", T0 + S, disks=with_sdb)])
    store.write([make_host_sample("a", T0 + 2 * S, disks=("sda",))])  # sdb gone
    store.write([make_host_sample("a", T0 + 3 * S, disks=with_sdb)])  # and back
    read = rates(store)["disk_read_bytes_per_s"].tolist()
    one = DISK_READ_SECTORS_PER_S * 512
    assert np.isnan(read[0])
    assert read[1:] == pytest.approx([2 * one, one, one])  # sdb's return step has no rate


def test_samples_frames_keep_nulls_and_exact_integers(store: Store) -> None:
    sample = make_host_sample("a", T0)
    big = dataclasses.replace(sample, net=(sample.net[0]._replace(rx_bytes=2**62 + 1),))
    store.write([big])
    mem = samples(store, "mem")
    assert str(mem["mem_total_bytes"].dtype) == "Int64"
    assert mem["unaccepted_bytes"].isna().all()
    assert samples(store, "net")["rx_bytes"].tolist() == [2**62 + 1]
    assert str(samples(store, "host_load")["load1"].dtype) == "Float64"  # NULL when NaN or inf


def test_empty_store_gives_an_empty_frame_with_all_columns(store: Store) -> None:
    frame = rates(store)
    assert frame.empty
    assert list(frame.columns) == ["host", "time_ns", *RATE_COLUMNS]


@pytest.mark.parametrize(
    ("device", "excluded"),
    [
        ("sda", False), ("nvme0n1", False), ("vda", False), ("xvdb", False),
        ("mmcblk0", False), ("sda1", True), ("nvme0n1p2", True), ("mmcblk0p1", True),
        ("loop7", True), ("ram0", True), ("zram0", True), ("dm-0", True), ("md127", True),
        ("sr0", True),
    ],
)  # fmt: skip
def test_disk_name_heuristic(device: str, excluded: bool) -> None:
    assert bool(EXCLUDED_DISKS.match(device)) is excluded


def test_boot_time_joins_frames_whose_host_columns_differ_in_string_dtype() -> None:
    # A table read while the writer commits can come back empty (object dtype)
    # beside a full one (string dtype); the join must not refuse the pair.
    frame = pd.DataFrame(
        {"host": pd.Series(["a", "a"], dtype="string"), "time_ns": [5, 9], "_order": [0, 1]}
    )
    stat = pd.DataFrame(
        {"host": pd.Series(["a"], dtype=object), "time_ns": [4], "boot_time_s": [100]}
    )
    joined = with_boot_time(frame, stat)
    assert joined["boot_time_s"].tolist() == [100.0, 100.0]
    empty = stat.iloc[0:0]
    assert with_boot_time(frame, empty)["boot_time_s"].isna().all()
