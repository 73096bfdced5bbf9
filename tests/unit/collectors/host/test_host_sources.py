"""PSI, uptime and cgroup v2: parsers on recorded and hand-written files, and in the collector."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from tests.unit.collectors.host.conftest import fixture_collector

from collectbus.collectors.base import CollectContext
from collectbus.collectors.host.cgroup import (
    cgroup_dir,
    cgroup_row,
    in_container,
    own_cgroup_path,
    parse_cpu_max,
    parse_flat_keyed,
    parse_io_stat,
    parse_single_value,
)
from collectbus.collectors.host.cgroupfiles import CgroupReader
from collectbus.collectors.host.parse_system import parse_pressure, parse_uptime
from collectbus.errors import ParseError
from collectbus.records import CgroupRow, PsiRow, UptimeRow

CGROUP = Path(__file__).resolve().parents[3] / "data" / "cgroup"


# ---------------------------------------------------------------- PSI, uptime


def test_pressure_files_of_the_recorded_host(fc_dir: Path) -> None:
    cpu = parse_pressure((fc_dir / "pressure_cpu").read_bytes(), "cpu")
    io = parse_pressure((fc_dir / "pressure_io").read_bytes(), "io")
    memory = parse_pressure((fc_dir / "pressure_memory").read_bytes(), "memory")
    assert cpu == PsiRow("cpu", 5.78, 11.97, 4.30, 15806237, 0.0, 0.0, 0.0, 0)
    assert io == PsiRow("io", 1.64, 2.32, 0.74, 2889415, 0.93, 1.18, 0.38, 1696899)
    assert memory == PsiRow("memory", 0.0, 0.0, 0.0, 0, 0.0, 0.0, 0.0, 0)


def test_pressure_without_full_line(edge_dir: Path) -> None:
    # Linux 4.20 to 5.12 print no "full" line for cpu.
    row = parse_pressure((edge_dir / "pressure_cpu_5_4").read_bytes(), "cpu")
    assert row == PsiRow("cpu", 0.12, 0.40, 0.35, 81234567, None, None, None, None)


@pytest.mark.parametrize(
    ("fixture", "line", "message"),
    [
        ("pressure_malformed", 2, "expected 'avg10= avg60= avg300= total='"),
        ("pressure_extra_line", 3, "expected a 'some' or 'full' line"),
    ],
)
def test_malformed_pressure_names_the_line(
    edge_dir: Path, fixture: str, line: int, message: str
) -> None:
    with pytest.raises(ParseError, match=message) as caught:
        parse_pressure((edge_dir / fixture).read_bytes(), "io", source=fixture)
    assert (caught.value.source, caught.value.line) == (fixture, line)


def test_pressure_needs_a_some_line() -> None:
    with pytest.raises(ParseError, match="no 'some' line"):
        parse_pressure(b"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", "io")
    with pytest.raises(ParseError, match="avg60="):
        parse_pressure(b"some avg10=0.00 avg61=0.00 avg300=0.00 total=0\n", "io")
    with pytest.raises(ParseError, match="not a number"):
        parse_pressure(b"some avg10=x avg60=0.00 avg300=0.00 total=0\n", "io")


def test_uptime(fc_dir: Path, edge_dir: Path) -> None:
    assert parse_uptime((fc_dir / "uptime").read_bytes()) == UptimeRow(222.35, 356.69)
    with pytest.raises(ParseError, match="expected 'uptime idle'"):
        parse_uptime((edge_dir / "uptime_malformed").read_bytes())
    with pytest.raises(ParseError, match="not a number"):
        parse_uptime(b"1.0 x\n")


# -------------------------------------------------------------------- cgroup


def test_cgroup_files_of_a_container() -> None:
    d = CGROUP / "v2-container"
    cpu = parse_flat_keyed((d / "cpu.stat").read_bytes(), "cpu.stat")
    assert cpu[b"usage_usec"] == 84213370
    assert cpu[b"nr_throttled"] == 1732
    assert parse_cpu_max((d / "cpu.max").read_bytes(), "cpu.max") == (200000, 100000)
    assert parse_single_value((d / "memory.current").read_bytes(), "m") == 536346624
    io = parse_io_stat((d / "io.stat").read_bytes(), "io.stat")
    assert (io[b"rbytes"], io[b"wbytes"], io[b"rios"], io[b"wios"]) == (
        104857600 + 4096,
        314572800,
        2561,
        7680,
    )


def test_cgroup_limits_may_be_max() -> None:
    d = CGROUP / "v2-unlimited"
    assert parse_cpu_max((d / "cpu.max").read_bytes(), "cpu.max") == (None, 100000)
    assert parse_single_value((d / "memory.max").read_bytes(), "memory.max", allow_max=True) is None
    with pytest.raises(ParseError, match="expected one integer"):
        parse_single_value(b"max\n", "memory.current")


def test_cgroup_row_of_a_container() -> None:
    reader = CgroupReader(str(CGROUP / "v2-container"), "/docker/abc")
    errors: list[str] = []
    ctx = CollectContext(host="c")
    row = reader.read(ctx, errors)
    reader.close()
    assert errors == []
    assert ctx.problems == []
    assert row == CgroupRow(
        "/docker/abc",
        84213370,
        61022310,
        23191060,
        40210,
        1732,
        98123456,
        200000,
        100000,
        536346624,
        1073741824,
        301989888,
        209715200,
        12582912,
        1048576,
        1843290,
        412,
        104861696,
        314572800,
        2561,
        7680,
        42,
    )


def test_recorded_root_cgroup_has_only_some_files() -> None:
    # The root cgroup of a live host: cpu.stat, no cpu.max nor memory.max.
    reader = CgroupReader(str(CGROUP / "v2-root-live"), "/")
    errors: list[str] = []
    row = reader.read(CollectContext(host="c"), errors)
    reader.close()
    assert errors == []
    assert row is not None
    assert row.cpu_usage_usec == 2082359254
    assert (row.cpu_max_quota_us, row.memory_current_bytes, row.io_rbytes) == (None, None, None)


@pytest.mark.parametrize(
    ("file", "message"),
    [
        ("cpu.max", "expected '\\$MAX \\$PERIOD'"),
        ("memory.max", "expected one integer"),
        ("cpu.stat", ":2: not a 'key value' line"),
        ("io.stat", ":1: not a key=value pair"),
    ],
)
def test_a_malformed_cgroup_file_is_one_error_and_the_rest_is_kept(
    tmp_path: Path, file: str, message: str
) -> None:
    directory = tmp_path / "cg"
    shutil.copytree(CGROUP / "v2-container", directory)
    shutil.copyfile(CGROUP / "malformed" / file, directory / file)
    reader = CgroupReader(str(directory), "/")
    errors: list[str] = []
    ctx = CollectContext(host="c")
    row = reader.read(ctx, errors)
    reader.close()
    assert len(errors) == 1
    assert len(ctx.problems) == 1
    assert errors[0].startswith(str(directory / file))
    assert "\n" not in errors[0]
    assert re.search(message, errors[0])
    assert row is not None
    assert row.pids_current == 42  # the other files are read
    assert row.memory_current_bytes == 536346624


def test_cgroup_row_leaves_unread_files_none() -> None:
    row = cgroup_row("/", pids_current=3)
    assert row.pids_current == 3
    assert row.cpu_usage_usec is None
    assert row.io_rbytes is None


def test_own_cgroup_and_container_detection() -> None:
    docker = (CGROUP / "self_cgroup_docker").read_bytes()
    root = (CGROUP / "self_cgroup_root").read_bytes()
    v1 = (CGROUP / "self_cgroup_v1").read_bytes()
    assert own_cgroup_path(docker) == "/system.slice/docker-4f3c1b2a.scope"
    assert own_cgroup_path(root) == "/"
    assert own_cgroup_path(v1) is None

    def nothing(_path: str) -> bool:
        return False

    assert in_container(docker, {}, nothing)
    assert not in_container(root, {}, nothing)
    assert in_container(root, {"container": "podman"}, nothing)
    assert in_container(root, {}, lambda path: path == "/.dockerenv")
    assert not in_container(None, {}, nothing)


def test_cgroup_dir_finds_the_own_cgroup(tmp_path: Path) -> None:
    docker = (CGROUP / "self_cgroup_docker").read_bytes()
    own = tmp_path / "system.slice" / "docker-4f3c1b2a.scope"
    own.mkdir(parents=True)
    (own / "cpu.stat").write_bytes(b"usage_usec 1\n")
    assert cgroup_dir(str(tmp_path), docker) == str(own)
    # A private cgroup namespace: the mounted root is the container's own.
    (tmp_path / "cgroup.controllers").write_bytes(b"cpu memory\n")
    assert cgroup_dir(str(tmp_path), b"0::/\n") == str(tmp_path)
    # A hybrid host mounts v2 at unified/.
    hybrid = tmp_path / "hybrid"
    (hybrid / "unified").mkdir(parents=True)
    (hybrid / "unified" / "cgroup.controllers").write_bytes(b"")
    assert cgroup_dir(str(hybrid), b"0::/\n") == str(hybrid / "unified")
    assert cgroup_dir(str(tmp_path / "none"), b"0::/\n") is None


# --------------------------------------------------------- in the collector


@pytest.fixture
def full_tree(proc_root: Path, fc_dir: Path) -> Path:
    (proc_root / "pressure").mkdir()
    for resource in ("cpu", "memory", "io"):
        shutil.copyfile(fc_dir / f"pressure_{resource}", proc_root / "pressure" / resource)
    shutil.copyfile(fc_dir / "uptime", proc_root / "uptime")
    (proc_root / "self").mkdir()
    shutil.copyfile(CGROUP / "self_cgroup_docker", proc_root / "self" / "cgroup")
    return proc_root


def test_collector_reads_psi_uptime_and_the_cgroup(full_tree: Path, tmp_path: Path) -> None:
    cgroot = tmp_path / "cgroup"
    shutil.copytree(CGROUP / "v2-container", cgroot / "system.slice" / "docker-4f3c1b2a.scope")
    collector = fixture_collector(full_tree, cgroup="auto", cgroup_root=str(cgroot), env={})
    ctx = CollectContext(host="h")
    try:
        [sample] = collector.collect(ctx)
        [again] = collector.collect(ctx)
    finally:
        collector.close()
    assert sample.errors == ()
    assert ctx.problems == []
    assert [row.resource for row in sample.psi] == ["cpu", "memory", "io"]
    assert sample.uptime == UptimeRow(222.35, 356.69)
    assert sample.cgroup is not None
    assert sample.cgroup.cgroup == "/system.slice/docker-4f3c1b2a.scope"
    assert sample.cgroup.memory_max_bytes == 1073741824
    assert again.psi == sample.psi
    assert again.cgroup == sample.cgroup


def test_cgroup_off_and_auto_outside_a_container(full_tree: Path, tmp_path: Path) -> None:
    shutil.copyfile(CGROUP / "self_cgroup_root", full_tree / "self" / "cgroup")
    for mode in ("off", "auto"):
        collector = fixture_collector(full_tree, cgroup=mode, cgroup_root=str(tmp_path), env={})
        if mode == "auto" and collector.cgroup_dir is not None:
            # The test itself runs in a container (/.dockerenv): auto is on.
            assert Path("/.dockerenv").exists()
        else:
            [sample] = collector.collect(CollectContext(host="h"))
            assert sample.cgroup is None
        collector.close()


def test_malformed_psi_is_one_error_and_the_rest_of_the_sample_is_kept(
    full_tree: Path, edge_dir: Path
) -> None:
    shutil.copyfile(edge_dir / "pressure_malformed", full_tree / "pressure" / "memory")
    collector = fixture_collector(full_tree)
    ctx = CollectContext(host="h")
    try:
        [sample] = collector.collect(ctx)
    finally:
        collector.close()
    assert sample.errors == (
        f"{full_tree / 'pressure' / 'memory'}:2: expected 'avg10= avg60= avg300= total=': "
        "'full avg10=0.93 avg60=1.18 total=1696899'",
    )
    assert [row.resource for row in sample.psi] == ["cpu", "io"]
    assert sample.uptime is not None
    assert sample.cpu
    assert sample.mem is not None
    assert sample.disk


def test_a_malformed_cgroup_file_in_the_collector(full_tree: Path, tmp_path: Path) -> None:
    cgroot = tmp_path / "cgroup"
    own = cgroot / "system.slice" / "docker-4f3c1b2a.scope"
    shutil.copytree(CGROUP / "v2-container", own)
    shutil.copyfile(CGROUP / "malformed" / "memory.max", own / "memory.max")
    collector = fixture_collector(full_tree, cgroup="on", cgroup_root=str(cgroot))
    try:
        [sample] = collector.collect(CollectContext(host="h"))
    finally:
        collector.close()
    assert len(sample.errors) == 1
    assert sample.errors[0].startswith(f"{own / 'memory.max'}:1: expected one integer")
    assert sample.cgroup is not None
    assert sample.cgroup.memory_current_bytes == 536346624
    assert len(sample.psi) == 3


def test_auto_reads_only_a_cgroup_with_limits(tmp_path: Path) -> None:
    # The root cgroup (a hybrid host's unified/ here) has cpu.stat but no limits.
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cpu.stat").write_bytes(b"usage_usec 1\n")
    assert cgroup_dir(str(tmp_path), b"0::/\n") == str(tmp_path / "unified")
    assert cgroup_dir(str(tmp_path), b"0::/\n", limits_only=True) is None
    (tmp_path / "unified" / "memory.max").write_bytes(b"max\n")
    assert cgroup_dir(str(tmp_path), b"0::/\n", limits_only=True) == str(tmp_path / "unified")


def test_the_fast_psi_path_equals_the_line_parser(fc_dir: Path, edge_dir: Path) -> None:
    from collectbus.collectors.host.parse_system import _parse_pressure_lines

    for path in (fc_dir / "pressure_cpu", fc_dir / "pressure_io", edge_dir / "pressure_cpu_5_4"):
        data = path.read_bytes()
        assert parse_pressure(data, "x") == _parse_pressure_lines(data, "x", "s")


def test_collector_lists_its_sources(full_tree: Path) -> None:
    collector = fixture_collector(full_tree)
    names = [Path(p).relative_to(full_tree).as_posix() for p in collector.sources]
    collector.close()
    assert names == [
        "stat",
        "meminfo",
        "vmstat",
        "diskstats",
        "net/dev",
        "loadavg",
        "uptime",
        "pressure/cpu",
        "pressure/memory",
        "pressure/io",
    ]
