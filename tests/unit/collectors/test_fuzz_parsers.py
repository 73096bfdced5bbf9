"""Every parser is total: whatever the bytes, a record or a ParseError, never another exception.

Inputs are arbitrary bytes and mutations of the recorded inputs of tests/data
(a number replaced by a huge, negative, NaN, infinite, 1e999 or deeply nested
value, an empty list, a cut, bytes that are not UTF-8), so that the fuzzer
reaches past the first line check. A few hundred examples per parser in the
default run; ``-m slow`` runs 2,000 each.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectbus.collectors.host import cgroup, inventory, parse, parse_system
from collectbus.collectors.host.keyvalues import MeminfoParser, VmstatParser
from collectbus.collectors.host.layouts import DiskstatsParser, NetDevParser, StatParser
from collectbus.collectors.jobusage import parse as jobusage
from collectbus.collectors.pbs.incremental import IncrementalJobs
from collectbus.collectors.pbs.jsonfix import JsonRepairError
from collectbus.collectors.pbs.parse import (
    parse_pbsnodes,
    parse_qstat_jobs,
    parse_qstat_queues,
    parse_qstat_server,
)
from collectbus.collectors.pbs.reservations import parse_pbs_rstat
from collectbus.collectors.process import parse as process
from collectbus.collectors.slurm import parse as slurm
from collectbus.collectors.slurm import text as slurm_text
from collectbus.collectors.slurm.reservations import parse_scontrol_reservations
from collectbus.errors import ParseError

DATA = Path(__file__).resolve().parents[2] / "data"

HOSTILE = [
    b"18446744073709551615",
    b"9223372036854775808",
    b"-1",
    b"nan",
    b"inf",
    b"-inf",
    b"1e999",
    b"-1e999",
    b"9" * 5000,
    b"[]",
    b"[" * 3000 + b"]" * 3000,
    b"\xff\xfe",
    b"",
]
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?")


def _files(*patterns: str) -> list[bytes]:
    out = [
        p.read_bytes() for pattern in patterns for p in sorted(DATA.glob(pattern)) if p.is_file()
    ]
    assert out, patterns
    return out


@st.composite
def _mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 3))):
        numbers = list(_NUMBER.finditer(data))
        kind = draw(st.sampled_from(["number", "number", "cut", "inject"]))
        if kind == "number" and numbers:
            m = numbers[draw(st.integers(0, len(numbers) - 1))]
            data = data[: m.start()] + draw(st.sampled_from(HOSTILE)) + data[m.end() :]
        elif kind == "cut" and data:
            data = data[: draw(st.integers(0, len(data)))]
        else:
            at = draw(st.integers(0, len(data)))
            data = (
                data[:at] + draw(st.sampled_from([b"\xff", b"\x00", b"\n", b":", b"="])) + data[at:]
            )
    return data


def _inputs(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=300), _mutated(seeds))


def _check(parser: Callable[[bytes], object], seeds: list[bytes], examples: int) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=examples < 1000,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(_inputs(seeds))
    def run(data: bytes) -> None:
        with contextlib.suppress(ParseError):
            parser(data)

    run()


def _cached(make: Callable[[str], object], pattern: str) -> Callable[[bytes], object]:
    """A cached parser fed the recorded file first, so that the fuzzed bytes hit its fast path."""
    seed = _files(pattern)[0]

    def parse_with_layout(data: bytes) -> object:
        parser = make("f")
        parser.parse(seed)  # type: ignore[attr-defined]
        return parser.parse(data)  # type: ignore[attr-defined]

    return parse_with_layout


def _pbs_jobs(data: bytes) -> object:
    try:
        parse_qstat_jobs(data, cluster="c", zone=UTC, observed_ns=0)
        jobs = IncrementalJobs(cluster="c", zone=UTC)
        jobs.parse(_files("pbs/qstat_fx_json__alcf_aurora_pbs_monitor_head.json")[0], 0)
        return jobs.parse(data, 1)
    except JsonRepairError as err:  # the collector turns it into a ParseError
        raise ParseError("qstat", err.line, str(err)) from err


def _pbs(parse_one: Callable[..., object]) -> Callable[[bytes], object]:
    def run(data: bytes) -> object:
        try:
            return parse_one(data, cluster="c", observed_ns=0)
        except JsonRepairError as err:
            raise ParseError("pbs", err.line, str(err)) from err

    return run


PARSERS: dict[str, tuple[Callable[[bytes], object], list[str]]] = {
    "stat": (parse.parse_stat, ["procfs/*/stat*"]),
    "stat-cached": (_cached(StatParser, "procfs/fc-6.18-2cpu/stat"), ["procfs/*/stat*"]),
    "meminfo": (parse.parse_meminfo, ["procfs/*/meminfo*"]),
    "meminfo-cached": (
        _cached(MeminfoParser, "procfs/fc-6.18-2cpu/meminfo"),
        ["procfs/*/meminfo*"],
    ),
    "vmstat": (parse.parse_vmstat, ["procfs/*/vmstat*"]),
    "vmstat-cached": (_cached(VmstatParser, "procfs/fc-6.18-2cpu/vmstat"), ["procfs/*/vmstat*"]),
    "diskstats": (parse.parse_diskstats, ["procfs/*/diskstats*"]),
    "diskstats-cached": (
        _cached(DiskstatsParser, "procfs/fc-6.18-2cpu/diskstats"),
        ["procfs/*/diskstats*"],
    ),
    "net/dev": (parse.parse_net_dev, ["procfs/*/net_dev*"]),
    "net/dev-cached": (_cached(NetDevParser, "procfs/fc-6.18-2cpu/net_dev"), ["procfs/*/net_dev*"]),
    "loadavg": (parse.parse_loadavg, ["procfs/*/loadavg*"]),
    "uptime": (parse_system.parse_uptime, ["procfs/*/uptime*"]),
    "pressure": (lambda d: parse_system.parse_pressure(d, "cpu"), ["procfs/*/pressure*"]),
    "cgroup flat": (lambda d: cgroup.parse_flat_keyed(d, "cpu.stat"), ["cgroup/*/*.stat"]),
    "cgroup single": (
        lambda d: cgroup.parse_single_value(d, "m", allow_max=True),
        ["cgroup/*/memory.*"],
    ),
    "cgroup cpu.max": (lambda d: cgroup.parse_cpu_max(d, "cpu.max"), ["cgroup/*/cpu.max"]),
    "cgroup io.stat": (lambda d: cgroup.parse_io_stat(d, "io.stat"), ["cgroup/*/io.stat"]),
    "cpuinfo": (inventory.parse_cpuinfo, ["procfs/*/cpuinfo", "inventory/cpuinfo*"]),
    "os-release": (inventory.parse_os_release, ["inventory/os-release*"]),
    "osrelease": (inventory.parse_osrelease, ["inventory/osrelease"]),
    "mounts": (inventory.parse_mounts, ["inventory/mounts*"]),
    "partitions": (inventory.parse_partitions, ["procfs/*/partitions"]),
    "version": (inventory.parse_proc_version, ["procfs/*/version"]),
    "pid stat": (lambda d: process.parse_stat(d, "stat"), ["procfs/pids-*/t*/*/stat"]),
    "pid statm": (lambda d: process.parse_statm(d, "statm"), ["procfs/pids-*/t*/*/statm"]),
    "pid status": (lambda d: process.parse_uid(d, "status"), ["procfs/pids-*/t*/*/status"]),
    "pid io": (lambda d: process.parse_io(d, "io"), ["procfs/pids-*/t*/*/io"]),
    "pbs jobs": (_pbs_jobs, ["pbs/qstat_fx_*.json", "jobs/qstat_fx_*.json"]),
    "pbs nodes": (_pbs(parse_pbsnodes), ["pbs/pbsnodes_*.json"]),
    "pbs queues": (_pbs(parse_qstat_queues), ["pbs/qstat_Qf_*.json"]),
    "pbs server": (_pbs(parse_qstat_server), ["pbs/qstat_Bf_*.json"]),
    "squeue json": (
        lambda d: slurm.parse_squeue_json(d, cluster=None, observed_ns=0, replaced=[]),
        ["slurm/squeue_json*.json"],
    ),
    "sinfo json": (
        lambda d: slurm.parse_sinfo_json(d, cluster="c", observed_ns=0, replaced=[]),
        ["slurm/sinfo_json*.json"],
    ),
    "sacct json": (
        lambda d: slurm.parse_sacct_json(d, cluster=None, observed_ns=0, replaced=[]),
        ["slurm/sacct_json*.json", "jobs/sacct_*.json"],
    ),
    "scontrol jobs": (
        lambda d: slurm_text.parse_scontrol_jobs(d, cluster="c", observed_ns=0),
        ["slurm/scontrol_show_job_o.txt", "slurm/jobcomp_filetxt.log"],
    ),
    "scontrol partitions": (
        lambda d: slurm_text.parse_scontrol_partitions(d, cluster="c", observed_ns=0),
        ["slurm/scontrol_show_partition_o.txt"],
    ),
    "sacct completion": (
        lambda d: slurm_text.parse_sacct_completion(d, cluster="c", observed_ns=0),
        ["slurm/sacct_completion_all.psv"],
    ),
    "squeue pipe": (
        lambda d: slurm_text.parse_squeue_pipe(d, cluster="c", observed_ns=0),
        ["slurm/squeue_format_pipe.txt"],
    ),
    "pbs_rstat -f": (
        lambda d: parse_pbs_rstat(d, cluster="c", observed_ns=0, refused=[]),
        ["pbs/reservations/*.txt"],
    ),
    "scontrol reservations": (
        lambda d: parse_scontrol_reservations(d, cluster="c", observed_ns=0, tz=UTC, refused=[]),
        ["slurm/scontrol_show_reservation_o_*.txt"],
    ),
    "job cgroup.procs": (
        lambda d: jobusage.parse_pids(d, "cgroup.procs"),
        ["cgroup/*/sys/fs/cgroup/**/cgroup.procs"],
    ),
    "job blkio": (
        lambda d: jobusage.parse_blkio_bytes(d, "blkio", []),
        ["cgroup/*/sys/fs/cgroup/**/blkio.throttle.io_service_bytes"],
    ),
    "/proc/PID/stat": (
        lambda d: jobusage.parse_proc_stat(d, "stat", []),
        ["cgroup/*/proc/*/stat"],
    ),
    "/proc/PID/io": (lambda d: jobusage.parse_proc_io(d, "io", []), ["cgroup/*/proc/*/io"]),
    "/proc/PID/cgroup": (jobusage.jobs_in_proc_cgroup, ["cgroup/*/proc/*/cgroup"]),
    "/proc/PID/environ": (jobusage.job_from_environ, ["cgroup/*/proc/*/environ"]),
}


@pytest.mark.parametrize("name", list(PARSERS))
def test_parser_is_total(name: str) -> None:
    parser, patterns = PARSERS[name]
    _check(parser, _files(*patterns), 200)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PARSERS))
def test_parser_is_total_at_length(name: str) -> None:
    parser, patterns = PARSERS[name]
    _check(parser, _files(*patterns), 2000)
