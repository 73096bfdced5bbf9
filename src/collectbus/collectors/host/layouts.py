"""Cached line layouts: the host collector's fast paths over :mod:`.parse`.

A /proc file keeps its layout for as long as the kernel runs: the same keys in
the same order, the same CPUs, disks and interfaces, until one is hot-plugged.
Each parser here learns that layout from a read that the pure parser of
:mod:`.parse` accepted. On later reads it splits the file into tokens, with
every newline made a token of its own, and checks the layout cheaply: the
token count, and the keys, names and line ends at their known positions. Then
it converts just the numbers, in bulk, into a flat list of ints. When the
check fails (a CPU went offline, a disk appeared, a key was added) the read
goes to the pure parser, which raises :class:`~collectbus.errors.ParseError`
on malformed content, and the layout is learnt again. So does a read with a
number out of range (:mod:`.numbers`): the pure parser replaces it by None and
names it in ``replaced``, and a file that keeps such a number takes the pure
parser on every read. The fast paths rule such a number out in bulk, not
value by value: a minus sign is a ``-`` byte where none was learnt (none but
those of the pinned names), and with none, values of which one passes
``2**63 - 1`` sum past it, which one C-level ``sum`` over the converted list
tells. Real counters sum far below it; a sum that does not is refused (the
pure parser then decides each value), never wrongly accepted.

With every line end pinned, each line has the very tokens the pure parser
accepted, so both read the same numbers from the same places; a layout is kept
only after its fast path reproduced, on the bytes it was learnt from, exactly
what the pure parser returned. The tests check the two against each other on
changed, renumbered and randomly edited files.

This module holds the machinery and the files of rows (stat's cpu lines,
diskstats, net/dev); :mod:`.keyvalues` holds meminfo and vmstat, whose lines
start with their keys, which lets them be checked more cheaply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import Generic, TypeVar

from collectbus.collectors.host import parse
from collectbus.collectors.host.numbers import INT64_MAX
from collectbus.records import CpuRow, DiskRow, NetRow, StatRow

__all__ = ["CachedParser", "DiskstatsParser", "NetDevParser", "StatParser", "getter", "to_int"]

R = TypeVar("R")
L = TypeVar("L")
T = TypeVar("T", bound=tuple[object, ...])

Getter = Callable[[list[bytes]], tuple[bytes, ...]]

# After a failed learning, learn again only after this many reads: a file the
# fast path cannot describe then costs one pure parse per read, not two.
_RELEARN_AFTER = 64

# What a fast path may raise when the file does not fit its layout after all.
_MISFIT = (ValueError, IndexError)

# What a newline becomes before splitting: a token of its own. A file that
# holds this byte already never takes a fast path (/proc text never does).
_EOL = b"\x00"
_EOL_SPACED = b" \x00 "
# Bytes looked for as ints: ``int in bytes`` is a memchr, where ``bytes in
# bytes`` first fails to read its operand as an int, at the cost of an exception.
# Likewise the fast paths compare slices rather than call startswith/endswith,
# whose arguments are parsed from a format string on every call.
_EOL_BYTE = _EOL[0]
_MINUS = ord("-")


def _tokens(data: bytes) -> list[bytes]:
    """The whitespace-separated tokens of ``data``, each newline an ``_EOL`` token.

    ValueError (no fast path) unless every line of ``data`` ends with a newline,
    as in every /proc file: what follows the last one would not be seen.
    """
    if _EOL_BYTE in data or data[-1:] != b"\n":
        raise ValueError("not /proc text")
    return data.replace(b"\n", _EOL_SPACED).split()


class _IntTable(dict[bytes, int]):
    """Decimal tokens to ints: the small ones by lookup, the others by ``int()``.

    Most numbers in these files are zeros and small counts (idle devices,
    unused features), and a dict lookup costs about a third of ``int()``. A
    token not in the table goes to ``int()`` itself, as ``__missing__``, and is
    not stored; the table never grows, and every result is ``int(token)``.
    """

    __missing__ = int


to_int = _IntTable({str(i).encode(): i for i in range(1000)}).__getitem__

# tuple.__new__ builds a NamedTuple row from a sequence without the checks of
# ``_make``; the layout has already fixed the length.
_new = tuple.__new__


def _rows(
    row_type: type[T], names: Iterable[str | int], flat: list[int], size: int, pad: int
) -> tuple[T, ...]:
    """Cut ``flat`` into rows of ``size`` ints, each after its name and before ``pad`` Nones.

    ``zip`` over one iterator given ``size`` times takes ``size`` numbers per
    row; it stops when the names run out.
    """
    numbers = iter(flat)
    return tuple(
        map(
            _new,
            repeat(row_type),
            zip(names, *[numbers] * size, *[repeat(None)] * pad, strict=False),
        )
    )


def getter(positions: list[int]) -> Getter:
    """``itemgetter`` that returns a tuple even for a single position."""
    if len(positions) == 1:
        only = positions[0]
        return lambda items: (items[only],)
    return itemgetter(*positions)


class CachedParser(Generic[R, L]):
    """A fast path over a learnt layout ``L``, with the pure parser behind it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._layout: L | None = None
        self._learn_in = 0
        #: Reads that went to the pure parser (the first, and every layout change).
        self.full_parses = 0
        #: The values of the last read replaced by None (out of range), by name.
        self.replaced: tuple[str, ...] = ()
        self._replaced: list[str] = []

    def parse(self, data: bytes) -> R:
        """Parse ``data``; raises ParseError as the pure parser does."""
        layout = self._layout
        if layout is not None:
            try:
                result = self._fast(layout, data)
            except _MISFIT:
                result = None
            if result is not None:
                self.replaced = ()
                return result
        self.full_parses += 1
        self.replaced = ()
        replaced: list[str] = []
        self._replaced = replaced
        result = self._pure(data)
        self.replaced = tuple(replaced)
        if self._learn_in > 0:
            self._learn_in -= 1
            self._layout = None
        else:
            self._layout = self._learn_checked(data, result)
            if self._layout is None:
                self._learn_in = _RELEARN_AFTER
        return result

    @property
    def has_layout(self) -> bool:
        """True when the next read can take the fast path."""
        return self._layout is not None

    def _learn_checked(self, data: bytes, result: R) -> L | None:
        try:
            layout = self._learn(data, result)
            if layout is None or self._fast(layout, data) != result:
                return None
        except _MISFIT:
            return None
        return layout

    def _pure(self, data: bytes) -> R:
        raise NotImplementedError

    def _learn(self, data: bytes, result: R) -> L | None:
        raise NotImplementedError

    def _fast(self, layout: L, data: bytes) -> R | None:
        raise NotImplementedError


def _line_starts(tokens: list[bytes]) -> list[int]:
    """The position of the first token of each line."""
    starts = [0]
    starts.extend(i + 1 for i, token in enumerate(tokens) if token == _EOL)
    if starts[-1] == len(tokens):
        starts.pop()
    return starts


# ------------------------------------------------------------- rows of numbers


@dataclass(slots=True, frozen=True)
class _RowsLayout:
    """Lines of one name and a fixed count of numbers each."""

    prefix: bytes  # header lines that must match exactly (net/dev)
    tokens: int
    width: int  # tokens per line, the line end included
    name_at: int  # the position of the name in a line
    raw_names: list[bytes]
    eols: list[bytes]
    names: tuple[str | int, ...]  # what the kept rows hold for their raw names
    pad: int  # how many None columns the kernel does not print
    dashes: int  # the ``-`` bytes of the raw names (``dm-0``): any other is a minus sign
    kept: Getter | None = None  # the numbers of the kept rows, None when all are kept


def _rows_numbers(layout: _RowsLayout, body: bytes) -> list[int] | None:
    """The numbers of every line as one flat list, or None if the layout differs.

    Also None when a number may be out of range: a ``-`` beyond those of the
    pinned names is a minus sign, and a sum past ``2**63 - 1`` may hide a value
    past it (see the module). The pure parser then decides.
    """
    tokens = _tokens(body)
    width = layout.width
    if (
        len(tokens) != layout.tokens
        or tokens[width - 1 :: width] != layout.eols
        or tokens[layout.name_at :: width] != layout.raw_names
        or (body.count(b"-") != layout.dashes if layout.dashes else _MINUS in body)
    ):
        return None
    del tokens[width - 1 :: width]
    del tokens[layout.name_at :: width - 1]
    if layout.kept is not None:
        numbers = list(map(to_int, layout.kept(tokens)))
    else:
        numbers = list(map(to_int, tokens))
    return None if sum(numbers) > INT64_MAX else numbers


def _rows_layout(
    tokens: list[bytes],
    names: tuple[str | int, ...],
    name_at: int,
    prefix: bytes,
    pad: int,
    keep: list[int] | None = None,
) -> _RowsLayout | None:
    """The layout of lines named ``names``, of which only the rows ``keep`` are returned."""
    if not names or len(tokens) % len(names):
        return None
    width = len(tokens) // len(names)
    kept: Getter | None = None
    if keep is not None and len(keep) != len(names):
        size = width - 2  # the numbers of a line: no name, no line end
        positions = [row * size + i for row in keep for i in range(size)]
        kept = getter(positions) if positions else (lambda _tokens: ())
        names = tuple(names[row] for row in keep)
    raw_names = tokens[name_at::width]
    return _RowsLayout(
        prefix=prefix,
        tokens=len(tokens),
        width=width,
        name_at=name_at,
        raw_names=raw_names,
        eols=[_EOL] * (len(tokens) // width),
        names=names,
        pad=pad,
        dashes=sum(name.count(b"-") for name in raw_names),
        kept=kept,
    )


Select = Callable[[tuple[R, ...]], list[int]]


class _FilteredRows(CachedParser[tuple[R, ...], _RowsLayout]):
    """Rows of which ``select`` picks the ones to keep (by position, in file order).

    Rows that are not kept are checked like the others but their numbers are
    never converted. ``select`` must give the same answer for the same names.
    """

    #: What the names of replaced values start with (``net``, ``disk``).
    prefix = ""

    def __init__(self, source: str, select: Select[R] | None = None) -> None:
        super().__init__(source)
        self._select = select
        self._all: tuple[R, ...] = ()
        self._keep: list[int] | None = None

    def _parse_all(self, data: bytes) -> tuple[R, ...]:
        raise NotImplementedError

    def _pure(self, data: bytes) -> tuple[R, ...]:
        rows = self._all = self._parse_all(data)
        if self._select is None:
            self._keep = None
            return rows
        keep = self._keep = self._select(rows)
        kept = tuple(rows[i] for i in keep)
        if self._replaced and len(kept) != len(rows):
            # Only the rows kept are stored: name only their values.
            names = {f"{self.prefix}.{row[0]}" for row in kept}  # type: ignore[index]
            self._replaced[:] = [n for n in self._replaced if n.rpartition(".")[0] in names]
        return kept


# --------------------------------------------------------------- /proc/stat

# The lines after ``intr``, in the order their values are wanted.
_STAT_TAIL_KEYS = (b"btime", b"ctxt", b"softirq", b"processes", b"procs_running", b"procs_blocked")
_CPU_ROW = len(CpuRow._fields)  # the cpu id and the ten tick columns


@dataclass(slots=True, frozen=True)
class _StatLayout:
    cpus: _RowsLayout
    tail_len: int
    tail_lines: int
    tail_pinned: Getter  # the first token and the end of every line after intr ...
    tail_pinned_tokens: tuple[bytes, ...]  # ... and what must be there
    tail_values: Getter  # the values of _STAT_TAIL_KEYS


class StatParser(CachedParser[tuple[tuple[CpuRow, ...], StatRow], _StatLayout]):
    """/proc/stat: the cpu lines as one flat list of ints, then six known lines."""

    def _pure(self, data: bytes) -> tuple[tuple[CpuRow, ...], StatRow]:
        return parse.parse_stat(data, self.source, replaced=self._replaced)

    def _learn(self, data: bytes, result: tuple[tuple[CpuRow, ...], StatRow]) -> _StatLayout | None:
        intr = data.find(b"\nintr ")
        end = data.find(b"\n", intr + 1)
        if intr < 0 or end < 0:
            return None
        cpus = _rows_layout(
            _tokens(data[: intr + 1]), tuple(row.cpu for row in result[0]), 0, b"", 0
        )
        if cpus is None or cpus.width != _CPU_ROW + 1:
            return None
        tail = _tokens(data[end + 1 :])
        starts = _line_starts(tail)
        keys = [tail[i] for i in starts]
        if any(keys.count(key) != 1 for key in _STAT_TAIL_KEYS):
            return None
        pinned = sorted([*starts, *(i for i, token in enumerate(tail) if token == _EOL)])
        return _StatLayout(
            cpus=cpus,
            tail_len=len(tail),
            tail_lines=data.count(b"\n", end + 1),
            tail_pinned=getter(pinned),
            tail_pinned_tokens=tuple(tail[i] for i in pinned),
            tail_values=getter([starts[keys.index(key)] + 1 for key in _STAT_TAIL_KEYS]),
        )

    def _fast(self, layout: _StatLayout, data: bytes) -> tuple[tuple[CpuRow, ...], StatRow] | None:
        intr = data.find(b"\nintr ")
        end = data.find(b"\n", intr + 1)
        if intr < 0 or end < 0:
            return None
        # The cpu lines: "cpu", "cpu0", ... pinned like the names of disks.
        flat = _rows_numbers(layout.cpus, data[: intr + 1])
        if flat is None:
            return None
        cpus = _rows(CpuRow, layout.cpus.names, flat, _CPU_ROW - 1, 0)

        # intr: only the first number, the total; the per-IRQ ones are not read.
        space = data.find(b" ", intr + 6, end)
        intr_total = int(data[intr + 6 : space if space > 0 else end])
        tail = _tokens(data[end + 1 :])
        # The numbers after softirq's first are not read, so not checked either:
        # the line count (each newline one _EOL token) keeps a newline from
        # hiding among them.
        if (
            len(tail) != layout.tail_len
            or layout.tail_pinned(tail) != layout.tail_pinned_tokens
            or tail.count(_EOL) != layout.tail_lines
        ):
            return None
        btime, ctxt, softirq, forks, running, blocked = map(to_int, layout.tail_values(tail))
        # In range exactly when their bitwise OR is (a negative one makes it negative).
        if not 0 <= intr_total | btime | ctxt | softirq | forks | running | blocked <= INT64_MAX:
            return None
        return cpus, _new(StatRow, (btime, ctxt, intr_total, softirq, forks, running, blocked))


# ---------------------------------------------------- diskstats and net/dev

# Documentation/admin-guide/iostats.rst: lines of 14, 18 (4.18) or 20 (5.5)
# fields, so 3 id fields and 11, 15 or 17 numbers, and the DiskRow columns of
# a shorter line that stay None. The fast path takes files of one width.
_DISK_PAD = {14: 6, 18: 2, 20: 0}


class DiskstatsParser(_FilteredRows[DiskRow]):
    """/proc/diskstats: the names pinned, the numbers of the kept disks converted as one list."""

    prefix = "disk"

    def _parse_all(self, data: bytes) -> tuple[DiskRow, ...]:
        return parse.parse_diskstats(data, self.source, replaced=self._replaced)

    def _learn(self, data: bytes, result: tuple[DiskRow, ...]) -> _RowsLayout | None:
        rows = self._all
        tokens = _tokens(data)
        fields = len(tokens) // len(rows) - 1 if rows else 0
        if fields not in _DISK_PAD or not data.endswith(b"\n"):
            return None
        names = tuple(row.device for row in rows)
        return _rows_layout(tokens, names, 2, b"", _DISK_PAD[fields], self._keep)

    def _fast(self, layout: _RowsLayout, data: bytes) -> tuple[DiskRow, ...] | None:
        flat = _rows_numbers(layout, data)
        if flat is None:
            return None
        return _rows(DiskRow, layout.names, flat, layout.width - 2, layout.pad)


_NET_COUNTERS = 16


class NetDevParser(_FilteredRows[NetRow]):
    """/proc/net/dev: the header and names pinned, the numbers of the kept interfaces as one list.

    ``b":"`` becomes ``b": "`` first, which splits a name glued to its first
    number (``eth0:5019464820``, kernels printing ``%6s:%8llu``) into two
    tokens. A name that holds a colon itself (``team0:1``) does not fit, and
    takes the pure parser.
    """

    prefix = "net"

    def _parse_all(self, data: bytes) -> tuple[NetRow, ...]:
        return parse.parse_net_dev(data, self.source, replaced=self._replaced)

    def _learn(self, data: bytes, result: tuple[NetRow, ...]) -> _RowsLayout | None:
        header_end = data.find(b"\n", data.find(b"\n") + 1) + 1
        if header_end <= 0 or not data.endswith(b"\n"):
            return None
        tokens = _tokens(data[header_end:].replace(b":", b": "))
        names = tuple(row.iface for row in self._all)
        layout = _rows_layout(tokens, names, 0, data[:header_end], 0, self._keep)
        if (
            layout is None
            or layout.width != _NET_COUNTERS + 2
            or any(name.count(b":") != 1 for name in layout.raw_names)
        ):
            return None
        return layout

    def _fast(self, layout: _RowsLayout, data: bytes) -> tuple[NetRow, ...] | None:
        if data[: len(layout.prefix)] != layout.prefix:
            return None
        flat = _rows_numbers(layout, data[len(layout.prefix) :].replace(b":", b": "))
        if flat is None:
            return None
        return _rows(NetRow, layout.names, flat, _NET_COUNTERS, 0)
