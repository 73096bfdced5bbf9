"""Pure parsers for the Linux /proc files of a host sample: bytes in, records out.

No function here does I/O, so every one of them runs on recorded fixtures. The
formats are those of ``man 5 proc`` and the kernel documentation cited at each
parser; optional columns are marked with the kernel version that added them.

Malformed content raises :class:`~collectbus.errors.ParseError` naming the
source and the 1-based line; a line is never skipped in silence. Lines a parser
does not use but that a kernel legitimately prints (``/proc/stat``'s ``page``
and ``swap`` lines on Linux 2.4, say) are well formed and are ignored.

Names (disks, interfaces) are decoded as UTF-8; bytes that are not UTF-8 become
backslash escapes, so that a name always survives being stored as text.

Numbers follow the rule of :mod:`collectbus.values` (see :mod:`.numbers`): a
counter that is negative or does not fit a signed 64-bit column, and a float
that is NaN or infinite, is None, and its name (``net.eth0.rx_bytes``) is
appended to the ``replaced`` list a parser is given.
"""

from __future__ import annotations

from typing import NamedTuple

from collectbus.collectors.host.numbers import INF, INT64_MAX, counter, note, real
from collectbus.errors import ParseError
from collectbus.procfields import MEMINFO_KEYS, VMSTAT_COLUMNS
from collectbus.records import CpuRow, DiskRow, LoadRow, NetRow, StatRow
from collectbus.values import fit_counter

__all__ = [
    "KeyValues",
    "parse_diskstats",
    "parse_loadavg",
    "parse_meminfo",
    "parse_meminfo_detail",
    "parse_net_dev",
    "parse_stat",
    "parse_vmstat",
    "parse_vmstat_detail",
]


# tuple.__new__ builds a NamedTuple row without the Python-level __new__.
_new = tuple.__new__


class KeyValues(NamedTuple):
    """A key-value file (meminfo, vmstat) parsed into its fixed columns.

    ``values`` is aligned to the column list of :mod:`collectbus.procfields`,
    with None for a key the file does not have. ``unknown_keys`` are the keys
    the file has but the columns do not (a newer kernel); they are counted,
    never guessed into another column.
    """

    values: tuple[int | None, ...]
    unknown_keys: tuple[str, ...]


# ------------------------------------------------------------------ helpers


def _lines(data: bytes) -> list[bytes]:
    """The lines of a file; the empty string after its final newline is no line."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def _shown(raw: bytes) -> str:
    """A token for an error message: printable and bounded."""
    text = _text(raw)
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _int(token: bytes, source: str, line: int, what: str) -> int | None:
    """A counter (:func:`.numbers.counter`): None when out of range; ParseError if not a number."""
    try:
        return counter(token)
    except ValueError as err:
        raise ParseError(source, line, f"{what}: not an integer: {_shown(token)}") from err


# --------------------------------------------------------------- /proc/stat

# man 5 proc, /proc/stat: the cpu columns in the order the kernel prints them.
# user nice system idle since Linux 2.4; iowait since 2.5.41; irq and softirq
# since 2.6.0; steal since 2.6.11; guest since 2.6.24; guest_nice since 2.6.33.
# A kernel that prints fewer columns gets 0 for the missing ones; a column a
# future kernel appends is ignored, never guessed into another one.
_CPU_COLUMNS = 10
_CPU_MIN_COLUMNS = 4

# One-number lines, all printed since Linux 2.6.0 (man 5 proc).
_STAT_SCALARS = (b"ctxt", b"btime", b"processes", b"procs_running", b"procs_blocked")
# Lines of many numbers whose first is the total: intr (since 2.4) and softirq
# (since 2.6.31, so an older kernel gets 0). The per-IRQ numbers are not read.
_STAT_TOTALS = (b"intr", b"softirq")
# The StatRow field of each line, to name a value replaced by None.
_STAT_FIELDS = {
    b"btime": "boot_time_s",
    b"ctxt": "ctxt_total",
    b"intr": "intr_total",
    b"softirq": "softirq_total",
    b"processes": "forks_total",
    b"procs_running": "procs_running",
    b"procs_blocked": "procs_blocked",
}
# A cpu number must fit the cpu column; a larger one is not a cpu name.
_MAX_CPU = 2**31 - 1


def parse_stat(
    data: bytes, source: str = "stat", *, replaced: list[str] | None = None
) -> tuple[tuple[CpuRow, ...], StatRow]:
    """Parse /proc/stat into its cpu rows and its whole-system row.

    The aggregate ``cpu`` line gives the row with ``cpu=-1``; the ``cpuN`` lines
    follow in file order. An offline CPU has no line, so numbers may have gaps
    (``cpu0``, ``cpu2``). Times are in USER_HZ ticks, as in the file.
    """
    cpus: list[CpuRow] = []
    seen_cpus: set[int] = set()
    found: dict[bytes, int | None] = {}
    for number, line in enumerate(_lines(data), 1):
        fields = line.split()
        if not fields:
            raise ParseError(source, number, "empty line")
        key = fields[0]
        if not key[:1].isalpha():
            raise ParseError(source, number, f"not a key: {_shown(key)}")
        if key.startswith(b"cpu"):
            cpu = _cpu_index(key, source, number)
            if cpu in seen_cpus:
                raise ParseError(source, number, f"second line for {_shown(key)}")
            seen_cpus.add(cpu)
            if len(fields) - 1 < _CPU_MIN_COLUMNS:
                raise ParseError(
                    source,
                    number,
                    f"{_shown(key)}: expected at least {_CPU_MIN_COLUMNS} columns, "
                    f"got {len(fields) - 1}",
                )
            ticks = [_int(t, source, number, _text(key)) for t in fields[1 : 1 + _CPU_COLUMNS]]
            note(replaced, f"cpu.{_text(key)}", CpuRow._fields[1:], ticks)
            ticks += [0] * (_CPU_COLUMNS - len(ticks))
            cpus.append(CpuRow(cpu, *ticks))
        elif key in _STAT_SCALARS or key in _STAT_TOTALS:
            if key in found:
                raise ParseError(source, number, f"second {_text(key)!r} line")
            if len(fields) < 2 or (len(fields) > 2 and key in _STAT_SCALARS):
                raise ParseError(source, number, f"{_text(key)}: {len(fields) - 1} numbers")
            found[key] = _int(fields[1], source, number, _text(key))
    if -1 not in seen_cpus:
        raise ParseError(source, None, "no aggregate 'cpu' line")
    for key in (*_STAT_SCALARS, b"intr"):
        if key not in found:
            raise ParseError(source, None, f"no {_text(key)!r} line")
    note(replaced, "stat", (_STAT_FIELDS[k] for k in found), found.values())
    stat = StatRow(
        boot_time_s=found[b"btime"],
        ctxt_total=found[b"ctxt"],
        intr_total=found[b"intr"],
        softirq_total=found.get(b"softirq", 0),
        forks_total=found[b"processes"],
        procs_running=found[b"procs_running"],
        procs_blocked=found[b"procs_blocked"],
    )
    return tuple(cpus), stat


def _cpu_index(key: bytes, source: str, line: int) -> int:
    """-1 for ``cpu``, N for ``cpuN``."""
    if key == b"cpu":
        return -1
    digits = key[3:]
    cpu = int(digits) if digits.isdigit() and len(digits) <= 10 else -1
    if not 0 <= cpu <= _MAX_CPU:
        raise ParseError(source, line, f"not a cpu name: {_shown(key)}")
    return cpu


# ------------------------------------------------------------ /proc/meminfo

_MEMINFO_INDEX = {key.encode(): i for i, (key, _) in enumerate(MEMINFO_KEYS)}
# Documentation/filesystems/proc.rst: every meminfo value is in kB except the
# HugePages_* counts, which have no unit; the *_bytes columns are the kB ones.
_MEMINFO_IN_KB = tuple(column.endswith("_bytes") for _, column in MEMINFO_KEYS)


def parse_meminfo(
    data: bytes, source: str = "meminfo", *, replaced: list[str] | None = None
) -> tuple[int | None, ...]:
    """Parse /proc/meminfo into values aligned to ``procfields.MEMINFO_KEYS``.

    kB values become bytes (x 1024), HugePages_* counts stay counts, and a key
    the kernel does not print (MemAvailable before 3.14) is None.
    """
    return parse_meminfo_detail(data, source, replaced=replaced).values


def parse_meminfo_detail(
    data: bytes, source: str = "meminfo", *, replaced: list[str] | None = None
) -> KeyValues:
    """Like :func:`parse_meminfo`, and also name the keys no column knows."""
    values: list[int | None] = [None] * len(MEMINFO_KEYS)
    seen: set[int] = set()
    unknown: list[str] = []
    for number, line in enumerate(_lines(data), 1):
        key, colon, rest = line.partition(b":")
        key = key.strip()
        if not colon or key.split() != [key]:
            raise ParseError(source, number, f"not a 'Key: value' line: {_shown(line)}")
        fields = rest.split()
        if not fields or len(fields) > 2 or (len(fields) == 2 and fields[1] != b"kB"):
            raise ParseError(
                source, number, f"{_text(key)}: expected a number and maybe 'kB': {_shown(rest)}"
            )
        value = _int(fields[0], source, number, _text(key))
        index = _MEMINFO_INDEX.get(key)
        if index is None:
            unknown.append(_text(key))
            continue
        in_kb = len(fields) == 2
        if in_kb != _MEMINFO_IN_KB[index]:
            unit = "in kB" if _MEMINFO_IN_KB[index] else "without a unit"
            raise ParseError(source, number, f"{_text(key)}: expected a value {unit}")
        if index in seen:
            raise ParseError(source, number, f"second line for {_text(key)}")
        seen.add(index)
        if value is not None and in_kb:
            value = fit_counter(value * 1024)
        values[index] = value
        if value is None and replaced is not None:
            replaced.append(f"mem.{MEMINFO_KEYS[index][1]}")
    return KeyValues(tuple(values), tuple(unknown))


# ------------------------------------------------------------- /proc/vmstat

_VMSTAT_INDEX = {key.encode(): i for i, key in enumerate(VMSTAT_COLUMNS)}


def parse_vmstat(
    data: bytes, source: str = "vmstat", *, replaced: list[str] | None = None
) -> tuple[int | None, ...]:
    """Parse /proc/vmstat into values aligned to ``procfields.VMSTAT_COLUMNS``.

    Values are as the kernel prints them (pages or event counts); a key the
    kernel does not print is None.
    """
    return parse_vmstat_detail(data, source, replaced=replaced).values


def parse_vmstat_detail(
    data: bytes, source: str = "vmstat", *, replaced: list[str] | None = None
) -> KeyValues:
    """Like :func:`parse_vmstat`, and also name the keys no column knows."""
    values: list[int | None] = [None] * len(VMSTAT_COLUMNS)
    seen: set[int] = set()
    unknown: list[str] = []
    for number, line in enumerate(_lines(data), 1):
        fields = line.split()
        if len(fields) != 2:
            raise ParseError(source, number, f"not a 'key value' line: {_shown(line)}")
        key = fields[0]
        value = _int(fields[1], source, number, _text(key))
        index = _VMSTAT_INDEX.get(key)
        if index is None:
            unknown.append(_text(key))
        elif index in seen:
            raise ParseError(source, number, f"second line for {_text(key)}")
        else:
            seen.add(index)
            values[index] = value
            if value is None and replaced is not None:
                replaced.append(f"vmstat.{VMSTAT_COLUMNS[index]}")
    return KeyValues(tuple(values), tuple(unknown))


# ---------------------------------------------------------- /proc/diskstats

# Documentation/admin-guide/iostats.rst: 3 id fields (major minor name), then
# 11 counters (all kernels since 2.6), 15 since Linux 4.18 (discard) and 17
# since 5.5 (flush). Fields past the 20th (a kernel newer than this parser)
# are ignored.
_DISK_FIELDS = (14, 18, 20)
_DISK_MAX = _DISK_FIELDS[-1]
# Linux 2.6.0 to 2.6.24 print a partition as 7 fields (iostats.rst, "Field 1
# -- # of reads issued", then sectors read, writes issued, sectors written).
# They map to read_ios, read_sectors, write_ios, write_sectors, and every other
# counter of that row is 0.
_PARTITION_FIELDS_2_6 = 7


def parse_diskstats(
    data: bytes, source: str = "diskstats", *, replaced: list[str] | None = None
) -> tuple[DiskRow, ...]:
    """Parse /proc/diskstats, one row per line, in file order."""
    rows: list[DiskRow] = []
    for number, line in enumerate(_lines(data), 1):
        fields = line.split()
        count = len(fields)
        if count != _PARTITION_FIELDS_2_6 and count not in _DISK_FIELDS and count < _DISK_MAX:
            raise ParseError(source, number, f"expected 14, 18 or 20 fields, got {count}")
        name = _text(fields[2])
        numbers: list[int | None] = [
            _int(fields[i], source, number, f"{name} field {i + 1}")
            for i in (0, 1, *range(3, min(count, _DISK_MAX)))
        ]
        if count == _PARTITION_FIELDS_2_6:
            major, minor, reads, rsect, writes, wsect = numbers
            numbers = [major, minor, reads, 0, rsect, 0, writes, 0, wsect, 0, 0, 0, 0]
        note(replaced, f"disk.{name}", DiskRow._fields[1:], numbers)
        numbers += [None] * (_DISK_MAX - 1 - len(numbers))
        rows.append(DiskRow._make([name, *numbers]))
    return tuple(rows)


# ------------------------------------------------------------ /proc/net/dev

_NET_COUNTERS = 16
_NET_HEADER_LINES = 2


def parse_net_dev(
    data: bytes, source: str = "net/dev", *, replaced: list[str] | None = None
) -> tuple[NetRow, ...]:
    """Parse /proc/net/dev, one row per interface, in file order.

    After the two header lines each line is ``name: 8 receive and 8 transmit
    counters`` (man 5 proc). The name ends at the LAST colon, so an alias such
    as ``team0:1`` keeps its own colon; kernels before 4.x print ``%6s:%8llu``,
    which glues a long first number to the name (``eth0:5019464820``). Both as
    prometheus/procfs parses them.
    """
    lines = _lines(data)
    for number in range(1, _NET_HEADER_LINES + 1):
        if len(lines) < number or b"|" not in lines[number - 1]:
            raise ParseError(source, number, "expected a header line with '|'")
    rows: list[NetRow] = []
    for number, line in enumerate(lines[_NET_HEADER_LINES:], _NET_HEADER_LINES + 1):
        colon = line.rfind(b":")
        if colon < 0:
            raise ParseError(source, number, f"no ':' after the interface name: {_shown(line)}")
        name_fields = line[:colon].split()
        if len(name_fields) != 1:
            raise ParseError(source, number, f"not an interface name: {_shown(line[:colon])}")
        name = _text(name_fields[0])
        fields = line[colon + 1 :].split()
        if len(fields) != _NET_COUNTERS:
            raise ParseError(
                source, number, f"{name}: expected {_NET_COUNTERS} counters, got {len(fields)}"
            )
        counters = [_int(f, source, number, name) for f in fields]
        note(replaced, f"net.{name}", NetRow._fields[1:], counters)
        rows.append(NetRow(name, *counters))
    return tuple(rows)


# ------------------------------------------------------------ /proc/loadavg


def parse_loadavg(
    data: bytes, source: str = "loadavg", *, replaced: list[str] | None = None
) -> LoadRow:
    """Parse /proc/loadavg: ``1.13 0.40 0.14 2/104 7563`` (man 5 proc)."""
    lines = _lines(data)
    fields = lines[0].split() if len(lines) == 1 else []
    if len(fields) != 5 or fields[3].count(b"/") != 1:
        raise ParseError(source, 1, f"expected 'l1 l5 l15 running/total last_pid': {_shown(data)}")
    running, _, total = fields[3].partition(b"/")
    try:
        load1, load5, load15 = float(fields[0]), float(fields[1]), float(fields[2])
        procs_running, procs_total, last_pid = int(running), int(total), int(fields[4])
    except ValueError:
        pass  # named below, value by value
    else:
        if (
            -INF < load1 + load5 + load15 < INF
            and 0 <= procs_running | procs_total | last_pid <= INT64_MAX
        ):
            return _new(LoadRow, (load1, load5, load15, procs_running, procs_total, last_pid))
    try:
        loads = [real(fields[0]), real(fields[1]), real(fields[2])]
    except ValueError as err:
        raise ParseError(source, 1, f"not a load average: {_shown(lines[0])}") from err
    try:
        counts = [counter(running), counter(total), counter(fields[4])]
    except ValueError as err:
        raise ParseError(source, 1, f"not an integer: {_shown(lines[0])}") from err
    row = LoadRow(loads[0], loads[1], loads[2], counts[0], counts[1], counts[2])
    note(replaced, "load", LoadRow._fields, row)
    return row
