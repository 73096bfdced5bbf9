"""Rates on the live machine against a second implementation: psutil.

Real disk traffic (a file written and fsync'ed, then read back with its pages
dropped from the cache) and real loopback traffic (a TCP connection over
127.0.0.1) happen between two moments. At each moment the collector takes a
sample and psutil reads the same counters right after it. CPU %, and the
disk and network bytes and packets each saw (its rate times the interval of
its own two readings, so that a few milliseconds more or less between the
reads at one moment than at the other change nothing), must agree within 1 %.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from collectbus.analysis import families
from collectbus.collectors.base import CollectContext
from collectbus.collectors.host.collector import HostCollector
from collectbus.records import HostSample

psutil = pytest.importorskip("psutil")

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/diskstats"), reason="needs a Linux /proc")

MB = 1024 * 1024
# On the project checkout, which is on a disk: /tmp may be a tmpfs.
ROOT = Path(__file__).resolve().parents[2]


def _psutil_reading() -> dict[str, object]:
    time_ns = time.time_ns()
    return {
        "time_ns": time_ns,
        "cpu": psutil.cpu_times(),
        "disk": psutil.disk_io_counters(perdisk=True, nowrap=False),
        "net": psutil.net_io_counters(pernic=True, nowrap=False),
    }


def _moment(collector: HostCollector, ctx: CollectContext) -> tuple[HostSample, dict[str, object]]:
    [sample] = collector.collect(ctx)
    return sample, _psutil_reading()


def _disk_traffic(directory: Path, size: int) -> None:
    path = directory / "traffic.bin"
    block = os.urandom(MB)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(size // MB):
            os.write(fd, block)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # clean pages leave the cache
    finally:
        os.close(fd)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        while os.read(fd, MB):
            pass
    finally:
        os.close(fd)
    path.unlink()


def _loopback_traffic(size: int) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    received = 0

    def drain() -> None:
        nonlocal received
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(MB):
                received += len(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    with socket.create_connection(server.getsockname()) as client:
        block = b"x" * MB
        for _ in range(size // MB):
            client.sendall(block)
    reader.join()
    server.close()
    assert received == size


@pytest.fixture
def on_disk() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(dir=ROOT, prefix=".live-traffic-") as directory:
        yield Path(directory)


def _row(frame: pd.DataFrame, time_ns: int, **key: object) -> pd.Series:
    mask = frame["time_ns"] == time_ns
    for column, value in key.items():
        mask &= frame[column] == value
    [index] = frame.index[mask]
    return frame.loc[index]


def _close(ours: float, theirs: float, what: str) -> None:
    assert theirs > 0, what
    assert abs(ours - theirs) <= 0.01 * theirs, f"{what}: collectbus {ours}, psutil {theirs}"


def _agree(ours: float, theirs: float, seconds: float, what: str, *, busy: float = MB) -> None:
    """Within 1 % where the traffic is (``busy`` over the interval); else within 1/4 of it.

    A quiet series (eth0, an idle disk) may see a packet or a journal write
    land between the collector's read and psutil's, which is no error of
    either but would be a large share of almost nothing.
    """
    if theirs * seconds >= busy:
        _close(ours, theirs, what)
    else:
        assert abs(ours - theirs) * seconds <= busy / 4, f"{what}: {ours} vs {theirs}"


def test_rates_agree_with_psutil_on_real_traffic(on_disk: Path) -> None:
    collector = HostCollector(cgroup="off")
    ctx = CollectContext(host="live")
    try:
        collector.collect(ctx)  # learn the layouts: both moments take the same path
        first, before = _moment(collector, ctx)
        _disk_traffic(on_disk, 48 * MB)
        _loopback_traffic(64 * MB)
        time.sleep(0.5)  # a longer interval: a tick of skew weighs less in CPU %
        second, after = _moment(collector, ctx)
    finally:
        collector.close()
    assert ctx.problems == []
    tables = families.sample_tables([first, second])
    t = second.time_ns
    psutil_s = (after["time_ns"] - before["time_ns"]) / 1e9  # type: ignore[operator]
    # Rates are compared as what each saw over psutil's interval.
    ours_s = (second.time_ns - first.time_ns) / 1e9

    # CPU %: busy (all but idle and iowait) over the total, as psutil.cpu_percent.
    c0, c1 = before["cpu"], after["cpu"]
    total = sum(c1) - sum(c0)  # type: ignore[arg-type]
    idle = (c1.idle - c0.idle) + (c1.iowait - c0.iowait)  # type: ignore[attr-defined]
    psutil_cpu = 100 * (total - idle) / total
    cpu_row = _row(families.cpu(tables), t)
    ours_cpu = cpu_row["cpu_percent"]
    # Within 1 % of the figure, or within one percentage point: on a quiet
    # machine CPU % is small, and the few 10 ms ticks that land between the
    # collector's read and psutil's are then more than 1 % of it. On a busy
    # one, more land there: at most the CPU time of every CPU over the time
    # between the two reads at each moment (and a tick of rounding at each).
    gap_s = (before["time_ns"] - first.time_ns + after["time_ns"] - second.time_ns) / 1e9  # type: ignore[operator]
    skew = 100 * (gap_s * (psutil.cpu_count() or 1) + 0.02) / total
    assert abs(ours_cpu - psutil_cpu) <= max(0.01 * psutil_cpu, 1.0, skew), (
        f"cpu %: collectbus {ours_cpu}, psutil {psutil_cpu} (skew {skew:.2f})"
    )
    # Each state's share too, within one percentage point (a tick of skew).
    for state in ("user", "system", "idle", "iowait", "softirq", "steal"):
        share = 100 * (getattr(c1, state) - getattr(c0, state)) / total
        assert abs(cpu_row[f"cpu_{state}_percent"] - share) <= max(1.0, skew), (
            state,
            cpu_row,
            share,
        )
    print(f"cpu % collectbus {ours_cpu:.3f} psutil {psutil_cpu:.3f} (skew {skew:.2f})")

    # Disk bytes/s per device the collector keeps (psutil has them all).
    disk = families.disk(tables)
    d0, d1 = before["disk"], after["disk"]
    busiest = max(
        (row["write_bytes_per_s"], row["device"])
        for _, row in disk[disk["time_ns"] == t].iterrows()
    )
    assert busiest[0] * (second.time_ns - first.time_ns) / 1e9 >= 40 * MB, busiest
    compared = 0
    for device in disk.loc[disk["time_ns"] == t, "device"]:
        row = _row(disk, t, device=device)
        for ours_name, theirs_name in (
            ("read_bytes_per_s", "read_bytes"),
            ("write_bytes_per_s", "write_bytes"),
        ):
            theirs = (
                getattr(d1[device], theirs_name) - getattr(d0[device], theirs_name)
            ) / psutil_s  # type: ignore[index]
            if theirs == 0:
                assert row[ours_name] == 0, (device, ours_name)
            else:
                _close(row[ours_name] * ours_s / psutil_s, theirs, f"{device} {ours_name}")

    # Network bytes/s per interface, loopback included.
    net = families.net(tables)
    n0, n1 = before["net"], after["net"]
    lo = _row(net, t, iface="lo")
    print(
        f"{busiest[1]} write {busiest[0] / MB:.2f} MiB/s; lo rx {lo['rx_bytes_per_s'] / MB:.2f} MiB/s"
    )
    assert lo["rx_bytes_per_s"] * (second.time_ns - first.time_ns) / 1e9 >= 64 * MB
    for iface in net.loc[net["time_ns"] == t, "iface"]:
        row = _row(net, t, iface=iface)
        for ours_name, theirs_name, busy in (
            ("rx_bytes_per_s", "bytes_recv", MB),
            ("tx_bytes_per_s", "bytes_sent", MB),
            ("rx_packets_per_s", "packets_recv", 100),
            ("tx_packets_per_s", "packets_sent", 100),
        ):
            theirs = (getattr(n1[iface], theirs_name) - getattr(n0[iface], theirs_name)) / psutil_s  # type: ignore[index]
            ours = row[ours_name] * ours_s / psutil_s
            _agree(ours, theirs, psutil_s, f"{iface} {ours_name}", busy=busy)
            compared += 1
    assert compared >= 8
