"""The collector's fast paths give exactly what the pure parsers give."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectbus.collectors.host import parse
from collectbus.collectors.host.keyvalues import MeminfoParser, VmstatParser
from collectbus.collectors.host.layouts import DiskstatsParser, NetDevParser, StatParser
from collectbus.errors import ParseError

Pure = Callable[[bytes, str], Any]

# (fast parser, pure parser, fixture in fc-6.18-2cpu)
PARSERS: list[tuple[type[Any], Pure, str]] = [
    (StatParser, parse.parse_stat, "stat"),
    (MeminfoParser, parse.parse_meminfo_detail, "meminfo"),
    (VmstatParser, parse.parse_vmstat_detail, "vmstat"),
    (DiskstatsParser, parse.parse_diskstats, "diskstats"),
    (NetDevParser, parse.parse_net_dev, "net_dev"),
]
IDS = [name for _, _, name in PARSERS]


@pytest.mark.parametrize(("cls", "pure", "name"), PARSERS, ids=IDS)
def test_second_read_takes_the_fast_path(
    fc_dir: Path, cls: type[Any], pure: Pure, name: str
) -> None:
    data = (fc_dir / name).read_bytes()
    parser = cls("src")
    assert parser.parse(data) == pure(data, "src")
    assert parser.has_layout
    assert parser.parse(data) == pure(data, "src")
    assert parser.full_parses == 1


@pytest.mark.parametrize(("cls", "pure", "name"), PARSERS[1:3], ids=IDS[1:3])
def test_fast_path_follows_a_changed_file(
    fc_dir: Path, cls: type[Any], pure: Pure, name: str
) -> None:
    before = (fc_dir / name).read_bytes()
    after = (fc_dir / f"{name}.after").read_bytes()
    assert before != after
    parser = cls("src")
    parser.parse(before)
    assert parser.parse(after) == pure(after, "src")
    assert parser.parse(before) == pure(before, "src")
    assert parser.full_parses == 1


def renumber(data: bytes, seed: int) -> bytes:
    """Every number of a file replaced by another, the layout kept."""
    counter = iter(range(10**9))

    def new(match: re.Match[bytes]) -> bytes:
        return str((seed * 7919 + next(counter) * 104729) % (10 ** (seed % 15 + 1))).encode()

    # Numbers are the digit runs that stand alone (not the 0 of cpu0 or eth0).
    return re.sub(rb"(?<![\w.])\d+(?![\w.])", new, data)


@pytest.mark.parametrize(("cls", "pure", "name"), PARSERS, ids=IDS)
@pytest.mark.parametrize("seed", [1, 2, 3, 14, 15])
def test_fast_path_on_renumbered_files(
    fc_dir: Path, cls: type[Any], pure: Pure, name: str, seed: int
) -> None:
    data = (fc_dir / name).read_bytes()
    changed = renumber(data, seed)
    assert changed != data
    parser = cls("src")
    parser.parse(data)
    assert parser.parse(changed) == pure(changed, "src")
    assert parser.full_parses == 1


EDGE_FILES = [
    (StatParser, parse.parse_stat, "stat_offline_cpu", True),
    (StatParser, parse.parse_stat, "stat_2_6_18", False),  # no softirq line
    (StatParser, parse.parse_stat, "stat_4_columns", False),
    (MeminfoParser, parse.parse_meminfo_detail, "meminfo_3_10", True),
    (DiskstatsParser, parse.parse_diskstats, "diskstats_14", True),
    (DiskstatsParser, parse.parse_diskstats, "diskstats_18", True),
    (DiskstatsParser, parse.parse_diskstats, "diskstats_20", True),
    (DiskstatsParser, parse.parse_diskstats, "diskstats_2_6_mixed", False),
    (NetDevParser, parse.parse_net_dev, "net_dev_glued", True),
    (NetDevParser, parse.parse_net_dev, "net_dev_aliases", False),  # team0:1
]


@pytest.mark.parametrize(
    ("cls", "pure", "name", "fast"), EDGE_FILES, ids=[e[2] for e in EDGE_FILES]
)
def test_edge_files_parse_alike(
    edge_dir: Path, cls: type[Any], pure: Pure, name: str, fast: bool
) -> None:
    data = (edge_dir / name).read_bytes()
    parser = cls("src")
    for _ in range(3):
        assert parser.parse(data) == pure(data, "src")
    assert parser.has_layout is fast
    assert parser.full_parses == (1 if fast else 3)


def test_a_key_added_falls_back_and_learns_again(fc_dir: Path) -> None:
    data = (fc_dir / "meminfo").read_bytes()
    added = data.replace(b"KernelStack:", b"ShadowCallStack:     128 kB\nKernelStack:")
    parser = MeminfoParser("src")
    parser.parse(data)
    result = parser.parse(added)
    assert result == parse.parse_meminfo_detail(added, "src")
    assert result.unknown_keys == ("ShadowCallStack",)
    assert parser.full_parses == 2
    assert parser.parse(added) == result
    assert parser.full_parses == 2
    assert parser.parse(data).unknown_keys == ()
    assert parser.full_parses == 3


@pytest.mark.parametrize(
    ("cls", "pure", "name", "edit"),
    [
        (StatParser, parse.parse_stat, "stat", (b"cpu1 ", b"cpu3 ")),
        (StatParser, parse.parse_stat, "stat", (b"cpu1 3221 0 1318 17316 158 0 35 38 0 0\n", b"")),
        (VmstatParser, parse.parse_vmstat_detail, "vmstat", (b"nr_mlock", b"nr_mlocked")),
        (DiskstatsParser, parse.parse_diskstats, "diskstats", (b"zram0", b"zram1")),
        (NetDevParser, parse.parse_net_dev, "net_dev", (b"ifb1:", b"ifb2:")),
        (NetDevParser, parse.parse_net_dev, "net_dev", (b"  eth0:", b"  eth0:0:")),
    ],
)
def test_hotplug_falls_back(
    fc_dir: Path, cls: type[Any], pure: Pure, name: str, edit: tuple[bytes, bytes]
) -> None:
    data = (fc_dir / name).read_bytes()
    changed = data.replace(*edit)
    assert changed != data
    parser = cls("src")
    parser.parse(data)
    assert parser.parse(changed) == pure(changed, "src")
    assert parser.full_parses == 2


@pytest.mark.parametrize(("cls", "pure", "name"), PARSERS, ids=IDS)
def test_malformed_after_a_good_read_still_raises(
    fc_dir: Path, edge_dir: Path, cls: type[Any], pure: Pure, name: str
) -> None:
    parser = cls("src")
    parser.parse((fc_dir / name).read_bytes())
    bad = (edge_dir / f"{name}_malformed").read_bytes()
    with pytest.raises(ParseError) as caught:
        parser.parse(bad)
    with pytest.raises(ParseError) as expected:
        pure(bad, "src")
    assert str(caught.value) == str(expected.value)
    # The layout survives a malformed read.
    assert parser.parse((fc_dir / name).read_bytes()) == pure((fc_dir / name).read_bytes(), "src")


# Small edits from an alphabet of what these files are made of, anywhere in a
# file: whatever the pure parser says (a result or a ParseError), a parser
# that learnt the original layout must say the same.
EDIT_BYTES = st.lists(
    st.sampled_from([bytes([c]) for c in b"0123456789 \n:+-_xkBcpu"]), max_size=3
).map(b"".join)


@pytest.mark.parametrize(("cls", "pure", "name"), PARSERS, ids=IDS)
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(where=st.floats(0, 1, exclude_max=True), cut=st.integers(0, 3), new=EDIT_BYTES)
def test_fast_path_agrees_with_the_pure_parser_on_edits(
    fc_dir: Path, cls: type[Any], pure: Pure, name: str, where: float, cut: int, new: bytes
) -> None:
    data = (fc_dir / name).read_bytes()
    at = int(where * len(data))
    edited = data[:at] + new + data[at + cut :]
    parser = cls("src")
    parser.parse(data)
    assert outcome(parser.parse, edited) == outcome(lambda d: pure(d, "src"), edited)


def outcome(parser: Callable[[bytes], Any], data: bytes) -> tuple[str, Any]:
    """What a parser made of ``data``: its result, or its error message."""
    try:
        return ("parsed", parser(data))
    except ParseError as err:
        return ("error", str(err))
