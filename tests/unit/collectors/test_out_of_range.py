"""Each hostile value once: out of range becomes None and is named; nothing else escapes."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC
from pathlib import Path

import pytest

from collectbus import codec
from collectbus.collectors.base import CollectContext
from collectbus.collectors.host.cgroupfiles import CgroupReader
from collectbus.collectors.host.collector import HostCollector
from collectbus.collectors.host.filters import FilterConfig
from collectbus.collectors.host.parse import (
    parse_diskstats,
    parse_loadavg,
    parse_meminfo,
    parse_net_dev,
    parse_stat,
    parse_vmstat,
)
from collectbus.collectors.host.parse_system import parse_pressure, parse_uptime
from collectbus.collectors.pbs.jsonfix import JsonRepairError, loads_pbs
from collectbus.collectors.pbs.parse import parse_qstat_jobs, parse_qstat_queues
from collectbus.collectors.slurm.parse import parse_squeue_json
from collectbus.errors import ParseError
from collectbus.records import HostSample

DATA = Path(__file__).resolve().parents[2] / "data"
FC = DATA / "procfs" / "fc-6.18-2cpu"
NIC_NA = b"18446744073709551615"


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "proc"
    (root / "net").mkdir(parents=True)
    (root / "pressure").mkdir()
    for name, target in (
        ("stat", "stat"),
        ("meminfo", "meminfo"),
        ("vmstat", "vmstat"),
        ("diskstats", "diskstats"),
        ("net_dev", "net/dev"),
        ("loadavg", "loadavg"),
        ("uptime", "uptime"),
        ("pressure_cpu", "pressure/cpu"),
        ("pressure_io", "pressure/io"),
        ("pressure_memory", "pressure/memory"),
    ):
        (root / target).write_bytes((FC / name).read_bytes())
    return root


def _collector(root: Path) -> HostCollector:
    keep = FilterConfig(disk_exclude=(), disk_partitions=True)
    return HostCollector(root, filters=keep, cgroup="off", sys_root=str(root.parent / "sys"))


def test_a_nic_counter_of_2_64_minus_1_is_none_and_named(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    net = (root / "net" / "dev").read_bytes().split(b"\n")
    first = net[2].split()
    name = first[0].rstrip(b":").decode()
    net[2] = b" ".join([first[0], NIC_NA, *first[2:]])
    (root / "net" / "dev").write_bytes(b"\n".join(net))
    ctx = CollectContext(host="h")
    collector = _collector(root)
    for _ in range(2):  # the second read goes through the learnt layout
        ctx = CollectContext(host="h")
        (sample,) = collector.collect(ctx)
        row = next(r for r in sample.net if r.iface == name)
        assert row.rx_bytes is None
        assert row.rx_packets is not None
        details = dict(ctx.details)
        assert details["out_of_range"] == "1"
        assert details["out_of_range_fields"] == f"net.{name}.rx_bytes"
    collector.close()


def _edit(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data
    return data.replace(old, new, 1)


# (file, the recorded file as the layout is learnt from it, then with one value
# out of range, the name the collection gives it). Two of the learnt files have
# a name holding "-" (dm-0, br-lan), which the fast paths tell from a minus sign.
_LEARNT_THEN_HOSTILE = [
    ("stat", b"btime 1795497241", b"btime 1795497241", b"btime " + NIC_NA, "stat.boot_time_s"),
    ("stat", b"cpu0 2477 ", b"cpu0 2477 ", b"cpu0 -2477 ", "cpu.cpu0.user"),
    ("stat", b"procs_blocked 0", b"procs_blocked 0", b"procs_blocked -1", "stat.procs_blocked"),
    # 2**53 + 1 kB is past 2**63 - 1 bytes.
    ("meminfo", b"24684084 kB", b"24684084 kB", b"9007199254740993 kB", "mem.mem_total_bytes"),
    (
        "vmstat",
        b"nr_free_pages 839574",
        b"nr_free_pages 839574",
        b"nr_free_pages " + NIC_NA,
        "vmstat.nr_free_pages",
    ),
    ("diskstats", b" loop0 0 ", b" dm-0 0 ", b" dm-0 -1 ", "disk.dm-0.read_ios"),
    ("net/dev", b"  ifb1:       0", b"br-lan:       0", b"br-lan:      -1", "net.br-lan.rx_bytes"),
    ("net/dev", b"eth0: 76987845", b"eth0: 76987845", b"eth0: " + NIC_NA, "net.eth0.rx_bytes"),
]


def _pure_part(file: str, data: bytes) -> object:
    parsers = {
        "stat": parse_stat,
        "meminfo": parse_meminfo,
        "vmstat": parse_vmstat,
        "diskstats": parse_diskstats,
        "net/dev": parse_net_dev,
    }
    return parsers[file](data)


def _sample_part(file: str, sample: HostSample) -> object:
    parts = {
        "stat": (sample.cpu, sample.stat),
        "meminfo": sample.mem,
        "vmstat": sample.vmstat,
        "diskstats": sample.disk,
        "net/dev": sample.net,
    }
    return parts[file]


@pytest.mark.parametrize(("file", "old", "learnt", "hostile", "name"), _LEARNT_THEN_HOSTILE)
def test_a_value_out_of_range_after_the_layout_is_learnt_is_refused_by_the_fast_path(
    tmp_path: Path, file: str, old: bytes, learnt: bytes, hostile: bytes, name: str
) -> None:
    root = _tree(tmp_path)
    path = root / file
    clean = _edit(path.read_bytes(), old, learnt)
    path.write_bytes(clean)
    collector = _collector(root)
    for _ in range(2):
        ctx = CollectContext(host="h")
        (sample,) = collector.collect(ctx)
        assert "out_of_range" not in dict(ctx.details)
    assert collector.full_parses[file] == 1  # the second read took the learnt layout

    bad = _edit(clean, learnt, hostile)
    path.write_bytes(bad)
    ctx = CollectContext(host="h")
    (sample,) = collector.collect(ctx)
    assert collector.full_parses[file] == 2  # refused by the fast path
    assert dict(ctx.details)["out_of_range_fields"] == name
    assert _sample_part(file, sample) == _pure_part(file, bad)
    assert not ctx.problems
    collector.close()


def test_a_negative_counter_is_none() -> None:
    data = (FC / "net_dev").read_bytes().replace(b" 0 ", b" -5 ", 1)
    replaced: list[str] = []
    rows = parse_net_dev(data, replaced=replaced)
    assert len(replaced) == 1
    assert any(None in row for row in rows)


@pytest.mark.parametrize(
    ("parse", "data", "name"),
    [
        (parse_uptime, b"inf 6\n", "uptime.uptime_s"),
        (parse_loadavg, b"nan 0.10 0.05 1/99 123\n", "load.load1"),
        (
            lambda d, replaced: parse_pressure(d, "cpu", replaced=replaced),
            b"some avg10=nan avg60=0.00 avg300=0.00 total=5\n",
            "psi.cpu.some_avg10",
        ),
    ],
)
def test_nan_and_inf_are_none_and_named(parse: object, data: bytes, name: str) -> None:
    replaced: list[str] = []
    row = parse(data, replaced=replaced)  # type: ignore[operator]
    assert replaced == [name]
    assert None in row


@pytest.mark.parametrize(
    ("parse", "data", "name"),
    [
        (parse_loadavg, b"0.20 0.10 0.05 1/99 9999999999999999999\n", "load.last_pid"),
        (parse_loadavg, b"0.20 0.10 0.05 -1/99 123\n", "load.procs_running"),
        (
            # As the kernel prints it, matched whole, with a 19-digit total past 2**63 - 1.
            lambda d, replaced: parse_pressure(d, "io", replaced=replaced),
            b"some avg10=0.00 avg60=0.00 avg300=0.00 total=9999999999999999999\n"
            b"full avg10=0.00 avg60=0.00 avg300=0.00 total=7\n",
            "psi.io.some_total_us",
        ),
    ],
)
def test_a_count_out_of_range_in_a_small_file_is_none_and_named(
    parse: object, data: bytes, name: str
) -> None:
    replaced: list[str] = []
    row = parse(data, replaced=replaced)  # type: ignore[operator]
    assert replaced == [name]
    assert sum(value is None for value in row) == 1


def test_a_psi_total_of_5000_digits_is_out_of_range_not_a_crash() -> None:
    data = (
        b"some avg10=0.00 avg60=0.00 avg300=0.00 total=" + b"9" * 5000 + b"\n"
        b"full avg10=0.00 avg60=0.00 avg300=0.00 total=1\n"
    )
    replaced: list[str] = []
    row = parse_pressure(data, "io", replaced=replaced)
    assert row.some_total_us is None
    assert row.full_total_us == 1
    assert replaced == ["psi.io.some_total_us"]


def test_json_of_a_sample_never_fails_on_nan(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "uptime").write_bytes(b"inf 6\n")
    (root / "loadavg").write_bytes(b"nan 0.10 0.05 1/99 123\n")
    (sample,) = _collector(root).collect(CollectContext(host="h"))
    plain = json.loads(codec.dumps_json(sample))
    assert plain["uptime"]["uptime_s"] is None
    assert plain["load"]["load1"] is None


@pytest.mark.parametrize(
    ("jobs", "field"),
    [
        ('{"1.s":{"eligible_time":inf}}', "1.s.eligible_time"),
        ('{"1.s":{"Resource_List":{"walltime":"-inf:02:00"}}}', "1.s.Resource_List.walltime"),
        ('{"1.s":{"Resource_List":{"ncpus":-1e999}}}', "1.s.Resource_List.ncpus"),
        ('{"1.s":{"ctime":"Tue Oct 4444444444444444444 21:23:20 2022"}}', "1.s.ctime"),
    ],
)
def test_pbs_values_out_of_range_cost_one_field(jobs: str, field: str) -> None:
    payload = ('{"pbs_server":"s","Jobs":' + jobs + "}").encode()
    parsed = parse_qstat_jobs(payload, cluster="c", zone=UTC, observed_ns=0)
    assert [r.job_id for r in parsed.records] == ["1.s"]
    assert parsed.out_of_range == [field]


def test_pbs_an_empty_list_state_is_one_problem() -> None:
    payload = b'{"Jobs":{"1.s":{"job_state":[]},"2.s":{"job_state":"R"}}}'
    parsed = parse_qstat_jobs(payload, cluster="c", zone=UTC, observed_ns=0)
    assert [r.state for r in parsed.records] == ["unknown", "running"]
    assert parsed.problem_count == 1


def test_pbs_a_queue_total_of_1e999_is_none() -> None:
    parsed = parse_qstat_queues(b'{"Queue":{"q":{"total_jobs":1e999}}}', cluster="c", observed_ns=0)
    assert parsed.records[0].jobs_total is None
    assert parsed.out_of_range == ["q.total_jobs"]
    json.loads(parsed.records[0].raw_json)  # valid JSON: the infinity is null


def test_pbs_a_5000_digit_number_is_one_value_out_of_range() -> None:
    payload = b'{"Jobs":{"1.s":{"Priority":' + b"9" * 5000 + b"}}}"
    parsed = parse_qstat_jobs(payload, cluster="c", zone=UTC, observed_ns=0)
    assert parsed.records[0].priority is None
    assert parsed.out_of_range == ["1.s.Priority"]


def test_pbs_50000_nested_lists_is_a_repair_error() -> None:
    with pytest.raises(JsonRepairError, match="nested too deeply"):
        loads_pbs(b'{"Jobs":' + b"[" * 50_000 + b"]" * 50_000 + b"}")


def test_slurm_numbers_out_of_range_are_none_and_named() -> None:
    doc = {"jobs": [{"job_id": 1, "job_state": "RUNNING", "priority": 2**64, "cpus": 1.5e308 * 10}]}
    replaced: list[str] = []
    (job,) = parse_squeue_json(
        json.dumps(doc).encode(), cluster="c", observed_ns=0, replaced=replaced
    )
    assert job.priority is None
    assert job.cpus_requested is None
    assert sorted(replaced) == ["job 1: cpus", "job 1: priority"]


def test_slurm_deep_nesting_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="nested too deeply"):
        parse_squeue_json(b"[" * 50_000, cluster="c", observed_ns=0)


def test_a_fifo_as_stat_is_refused_without_blocking(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "stat").unlink()
    os.mkfifo(root / "stat")
    ctx = CollectContext(host="h")
    (sample,) = _collector(root).collect(ctx)
    assert sample.cpu == ()
    assert sample.mem is not None
    assert sample.errors == (f"{root / 'stat'}: not a regular file (a FIFO); not read",)


def test_stat_linked_to_dev_zero_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "stat").unlink()
    (root / "stat").symlink_to("/dev/zero")
    (sample,) = _collector(root).collect(CollectContext(host="h"))
    assert sample.errors == (f"{root / 'stat'}: not a regular file (a character device); not read",)
    assert sample.net


def test_a_file_past_the_size_cap_is_refused(tmp_path: Path) -> None:
    from collectbus.collectors.host.procfile import ProcFile
    from collectbus.errors import CollectError

    big = tmp_path / "big"
    big.write_bytes(b"x" * 100_000)
    with pytest.raises(CollectError, match="longer than 10000 bytes"):
        ProcFile(str(big), max_bytes=10_000).read()


def test_cgroup_values_out_of_range_are_named_only_when_a_row_keeps_them(tmp_path: Path) -> None:
    directory = tmp_path / "cgroup"
    shutil.copytree(DATA / "cgroup" / "v2-container", directory)
    stat = directory / "memory.stat"
    data = stat.read_bytes()
    for old, new in (
        (b"workingset_refault_anon 0\n", b"workingset_refault_anon " + NIC_NA + b"\n"),
        (b"pgfault 1843290\n", b"pgfault " + NIC_NA + b"\n"),
    ):
        assert old in data
        data = data.replace(old, new)
    stat.write_bytes(data)
    io = directory / "io.stat"
    io.write_bytes(io.read_bytes().replace(b"dbytes=0", b"dbytes=" + NIC_NA, 1))
    reader = CgroupReader(str(directory), "/docker/abc")
    ctx = CollectContext(host="h")
    errors: list[str] = []
    replaced: list[str] = []
    row = reader.read(ctx, errors, replaced)
    reader.close()
    assert row is not None
    assert row.memory_pgfault is None  # replaced and named: the row keeps it
    assert errors == []
    # workingset_refault_anon and dbytes are not stored: out of range, yet not named
    assert replaced == ["cgroup.memory.stat.pgfault"]
