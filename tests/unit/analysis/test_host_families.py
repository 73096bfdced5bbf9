"""Host rates by family, on samples built from recorded and hand-written /proc files."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from collectbus.analysis import families
from collectbus.collectors.host.parse import (
    parse_diskstats,
    parse_meminfo,
    parse_net_dev,
    parse_stat,
    parse_vmstat,
)
from collectbus.procfields import VMSTAT_COLUMNS
from collectbus.records import CpuRow, DiskRow, HostSample
from collectbus.testing.hosts import make_host_sample

PROCFS = Path(__file__).resolve().parents[2] / "data" / "procfs"
FC = PROCFS / "fc-6.18-2cpu"
EDGE = PROCFS / "edge"
T0 = 1_700_000_000 * 10**9
S = 10**9


def _sample(
    time_ns: int, *, stat: Path = FC / "stat", net_dev: Path = FC / "net_dev"
) -> HostSample:
    cpus, stat_row = parse_stat(stat.read_bytes())
    return HostSample(
        host="h",
        time_ns=time_ns,
        cpu=cpus,
        stat=stat_row,
        mem=parse_meminfo((FC / "meminfo").read_bytes()),
        vmstat=parse_vmstat((FC / "vmstat").read_bytes()),
        disk=parse_diskstats((FC / "diskstats").read_bytes()),
        net=parse_net_dev(net_dev.read_bytes()),
    )


def _at(frame: pd.DataFrame, time_ns: int, **key: object) -> pd.Series:
    mask = frame["time_ns"] == time_ns
    for column, value in key.items():
        mask &= frame[column] == value
    [index] = frame.index[mask]
    return frame.loc[index]


def test_user_hz_is_the_system_clock_tick() -> None:
    assert os.sysconf("SC_CLK_TCK") == families.USER_HZ
    assert os.sysconf("SC_PAGE_SIZE") == families.PAGE_SIZE


def test_iostat_figures_as_sysstat_defines_them() -> None:
    def row(
        read_ios: int,
        read_ticks: int,
        write_ios: int,
        write_ticks: int,
        io: int,
        queue: int,
        sectors: int,
    ) -> DiskRow:
        return DiskRow(
            "sda",
            8,
            0,
            read_ios,
            0,
            sectors,
            read_ticks,
            write_ios,
            0,
            2 * sectors,
            write_ticks,
            1,
            io,
            queue,
            None,
            None,
            None,
            None,
            None,
            None,
        )

    base = make_host_sample("h", T0, disks=(), ifaces=())
    first = dataclasses.replace(base, disk=(row(100, 50, 200, 400, 1000, 5000, 8000),))
    # Two seconds later: 300 reads taking 900 ms in all, 100 writes taking 1500 ms,
    # busy 1500 ms of the 2000, 4000 ms of queue time.
    second = dataclasses.replace(
        make_host_sample("h", T0 + 2 * S, disks=(), ifaces=()),
        disk=(row(400, 950, 300, 1900, 2500, 9000, 8000 + 4096),),
    )
    out = _at(families.disk(families.sample_tables([first, second])), T0 + 2 * S, device="sda")
    assert out["r_s"] == 150.0
    assert out["w_s"] == 50.0
    assert out["read_bytes_per_s"] == 4096 * 512 / 2
    assert out["write_bytes_per_s"] == 2 * 4096 * 512 / 2
    assert out["r_await_ms"] == 3.0
    assert out["w_await_ms"] == 15.0
    assert out["aqu_sz"] == 2.0
    assert out["util_percent"] == 75.0
    # No I/O in a step: await is 0, as iostat prints it; util is capped at 100.
    third = dataclasses.replace(
        make_host_sample("h", T0 + 3 * S, disks=(), ifaces=()),
        disk=(row(400, 950, 300, 1900, 4000, 9000, 8000 + 4096),),
    )
    out = _at(families.disk(families.sample_tables([second, third])), T0 + 3 * S, device="sda")
    assert (out["r_await_ms"], out["w_await_ms"], out["util_percent"]) == (0.0, 0.0, 100.0)


def test_cpu_states_and_per_cpu_with_an_offline_gap() -> None:
    first = _sample(T0, stat=EDGE / "stat_offline_cpu")
    cpus = tuple(
        CpuRow(
            c.cpu,
            c.user + 30,
            c.nice,
            c.system + 10,
            c.idle + 50,
            c.iowait + 5,
            c.irq + 1,
            c.softirq + 2,
            c.steal + 2,
            0,
            0,
        )
        for c in first.cpu
    )
    second = dataclasses.replace(first, time_ns=T0 + S, cpu=cpus)
    tables = families.sample_tables([first, second])
    per_cpu = families.cpu(tables, percpu=True)
    assert sorted(set(per_cpu["cpu"])) == [0, 2]  # cpu1 offline: no row, no gap filled
    for cpu in (0, 2):
        row = _at(per_cpu, T0 + S, cpu=cpu)
        assert row["cpu_user_percent"] == pytest.approx(30)
        assert row["cpu_idle_percent"] == pytest.approx(50)
        assert row["cpu_irq_percent"] == pytest.approx(3)
        assert row["cpu_hardirq_percent"] == pytest.approx(1)
        assert row["cpu_steal_percent"] == pytest.approx(2)
        assert row["cpu_percent"] == pytest.approx(45)
        assert row["cpu_busy_cores"] == pytest.approx(45 / families.USER_HZ)
    total = _at(families.cpu(tables), T0 + S)
    assert total["cpu_percent"] == pytest.approx(45)
    assert families.cpu(tables)["cpu_percent"].isna().tolist() == [True, False]  # first: no rate


def test_a_32_bit_wrap_and_a_reset_from_recorded_files() -> None:
    before = _sample(T0, net_dev=EDGE / "net_dev_wrap.before")
    before = dataclasses.replace(before, cpu=_sample(T0).cpu, stat=_sample(T0).stat)
    after = dataclasses.replace(
        before, time_ns=T0 + 2 * S, net=parse_net_dev((EDGE / "net_dev_wrap.after").read_bytes())
    )
    net = families.net(families.sample_tables([before, after]))
    eth0 = _at(net, T0 + 2 * S, iface="eth0")
    assert eth0["rx_bytes_per_s"] == (2704 + 2**32 - 4294960000) / 2  # wrapped
    assert eth0["tx_bytes_per_s"] == (4294500000 - 4294000000) / 2
    veth = _at(net, T0 + 2 * S, iface="veth1")
    assert np.isnan(veth["rx_bytes_per_s"])  # re-created: far larger drop than a wrap
    assert _at(net, T0 + 2 * S, iface="lo")["rx_packets_per_s"] == 5.0
    # A reboot (btime changed) gives no rate for that step, whatever the counters.
    rebooted = dataclasses.replace(after, stat=parse_stat((EDGE / "stat_rebooted").read_bytes())[1])
    net = families.net(families.sample_tables([before, rebooted]))
    assert net.loc[net["time_ns"] == T0 + 2 * S, "tx_bytes_per_s"].isna().all()


def test_memory_and_paging() -> None:
    first = make_host_sample("h", T0)
    second = make_host_sample("h", T0 + 4 * S)
    index = {c: i for i, c in enumerate(VMSTAT_COLUMNS)}
    vm = list(second.vmstat or ())
    assert first.vmstat is not None
    for key, step in (
        ("pswpin", 10),
        ("pswpout", 20),
        ("pgfault", 4000),
        ("pgmajfault", 8),
        ("oom_kill", 1),
    ):
        vm[index[key]] = first.vmstat[index[key]] + step
    second = dataclasses.replace(second, vmstat=tuple(vm))
    mem = _at(families.mem(families.sample_tables([first, second])), T0 + 4 * S)
    assert second.mem is not None
    assert mem["mem_used_bytes"] == second.mem[0] - second.mem[2]
    assert mem["swap_in_bytes_per_s"] == 10 * families.PAGE_SIZE / 4
    assert mem["swap_out_bytes_per_s"] == 20 * families.PAGE_SIZE / 4
    assert mem["pgfault_per_s"] == 1000
    assert mem["pgmajfault_per_s"] == 2
    assert mem["oom_kills"] == 1


def test_memory_without_memavailable() -> None:
    first = _sample(T0)
    old = dataclasses.replace(first, mem=parse_meminfo((EDGE / "meminfo_3_10").read_bytes()))
    mem = families.mem(families.sample_tables([old]))
    assert np.isnan(mem["mem_used_bytes"].iloc[0])  # no MemAvailable before Linux 3.14
    assert mem["mem_cached_bytes"].iloc[0] > 0


def test_psi_without_full_has_no_full_figures() -> None:
    from collectbus.collectors.host.parse_system import parse_pressure

    cpu = parse_pressure((EDGE / "pressure_cpu_5_4").read_bytes(), "cpu")
    first = dataclasses.replace(_sample(T0), psi=(cpu,))
    later = cpu._replace(some_total_us=cpu.some_total_us + 250_000)
    second = dataclasses.replace(_sample(T0 + S), psi=(later,))
    psi = _at(families.psi(families.sample_tables([first, second])), T0 + S)
    assert psi["psi_cpu_some_percent"] == 25.0
    assert np.isnan(psi["psi_cpu_full_percent"])
    assert psi["psi_cpu_some_avg10"] == 0.12


def test_uptime_boot_time_and_idle_share() -> None:
    first = make_host_sample("h", T0, psi=True)
    second = make_host_sample("h", T0 + 10 * S, psi=True)
    out = families.uptime(families.sample_tables([first, second]))
    assert second.uptime is not None
    assert second.stat is not None
    row = _at(out, T0 + 10 * S)
    assert row["uptime_s"] == second.uptime.uptime_s
    assert row["boot_time_s"] == second.stat.boot_time_s
    # make_host_sample's idle grows 1.5 s per second over 2 CPUs: 75 %.
    assert row["idle_percent"] == pytest.approx(75.0)
    assert np.isnan(_at(out, T0)["idle_percent"])
