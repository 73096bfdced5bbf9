"""The per-process parsers on recorded files and on hostile ones."""

from __future__ import annotations

import json
import pwd
from pathlib import Path

import pytest

from collectbus.collectors.process.parse import (
    parse_cmdline,
    parse_io,
    parse_stat,
    parse_statm,
    parse_uid,
)
from collectbus.errors import ParseError

DATA = Path(__file__).resolve().parents[3] / "data" / "procfs" / "pids-6.18" / "t0"


def _fields(line: bytes) -> list[bytes]:
    """The numbered fields of ``man 5 proc`` (1: pid, 2: comm, ...), split naively after comm."""
    head, _, rest = line.rpartition(b")")
    return [head.split(b" (", 1)[0], head.split(b" (", 1)[1], *rest.split()]


@pytest.mark.parametrize("stat", sorted(DATA.glob("*/stat")), ids=lambda p: p.parent.name)
def test_recorded_stat_lines(stat: Path) -> None:
    data = stat.read_bytes()
    f = _fields(data)
    parsed = parse_stat(data, str(stat))
    assert parsed.pid == int(stat.parent.name) == int(f[0])
    assert parsed.cpu_ticks == int(f[13]) + int(f[14])
    assert parsed.threads == int(f[19])
    assert parsed.start_ticks == int(f[21])
    assert parsed.rss_pages == int(f[23])


@pytest.mark.parametrize(
    ("name", "line_name"),
    [
        ("(a) b)", b"((a) b))"),
        ("a b", b"(a b)"),
        ("x\ny)", b"(x\ny))"),
        (")", b"())"),
        ("", b"()"),
    ],
)
def test_names_with_spaces_parentheses_and_newlines(name: str, line_name: bytes) -> None:
    tail = b" S 1 1 1 0 -1 0 0 0 0 0 7 5 0 0 20 0 3 0 99 100 42 0 0 0\n"
    parsed = parse_stat(b"123 " + line_name + tail, "/proc/123/stat")
    assert (parsed.pid, parsed.name, parsed.cpu_ticks, parsed.threads) == (123, name, 12, 3)
    assert (parsed.start_ticks, parsed.rss_pages) == (99, 42)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a 'pid \\(comm\\)"),
        (b"garbage without a name\n", "not a 'pid \\(comm\\)"),
        (b"12 (x) S 1 2 3\n", "4 fields after the name"),
        (b"12 (x) S" + b" 1" * 10 + b" x1 2" + b" 1" * 20 + b"\n", "not a number"),
        (b"ab (x) S" + b" 1" * 30 + b"\n", "not a number"),
        (b"12 (x) S" + b" 1" * 10 + b" -5" + b" 1" * 20 + b"\n", "negative"),
    ],
)
def test_garbage_stat_lines_are_parse_errors_naming_the_file(data: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message) as err:
        parse_stat(data, "/proc/12/stat")
    assert "/proc/12/stat" in str(err.value)


def test_a_negative_rss_reads_as_none_resident() -> None:
    line = b"5 (x) S" + b" 1" * 20 + b" -3 0\n"
    assert parse_stat(line, "stat").rss_pages == 0


def test_recorded_status_io_statm_and_cmdline() -> None:
    oracle = json.loads((DATA.parent / "psutil_oracle.json").read_text())["t0"]["processes"]
    pids = sorted(DATA.glob("[0-9]*"))
    for pid in pids:
        uid = parse_uid((pid / "status").read_bytes(), "status")
        assert pwd.getpwuid(uid).pw_name == oracle[pid.name]["username"]
        statm = (pid / "statm").read_bytes()
        assert parse_statm(statm, "statm") == int(statm.split()[1])
    postgres = next(p for p in pids if parse_uid((p / "status").read_bytes(), "s") != 0)
    io = (postgres / "io").read_text().split("\n")
    values = dict(line.split(": ") for line in io if line)
    assert parse_io((postgres / "io").read_bytes(), "io") == (
        int(values["read_bytes"]),
        int(values["write_bytes"]),
    )
    cmdline = (postgres / "cmdline").read_bytes()
    assert parse_cmdline(cmdline, "postgres") == cmdline.rstrip(b"\0").replace(b"\0", b" ").decode()


def test_a_kernel_thread_command_is_its_name_in_brackets() -> None:
    assert parse_cmdline(b"", "kworker/0:1") == "[kworker/0:1]"
    assert parse_cmdline(b"sleep\x0010\x00", "sleep") == "sleep 10"


@pytest.mark.parametrize(
    ("parse", "data", "message"),
    [
        (parse_uid, b"Name:\tx\n", "no 'Uid:' line"),
        (parse_uid, b"Uid:\tzero\n", "not a 'Uid:' line"),
        (parse_io, b"rchar: 1\nread_bytes: 2\n", "no write_bytes line"),
        (parse_io, b"read_bytes: x\nwrite_bytes: 1\n", "not a number"),
        (parse_statm, b"12\n", "not a statm line"),
        (parse_statm, b"12 -1 3\n", "negative"),
    ],
)
def test_malformed_status_io_and_statm(parse: object, data: bytes, message: str) -> None:
    assert callable(parse)
    with pytest.raises(ParseError, match=message):
        parse(data, "/proc/9/x")
