"""Pure parsers for /proc/pressure/{cpu,memory,io} and /proc/uptime: bytes in, rows out.

Like :mod:`.parse`, nothing here does I/O, and malformed content raises
:class:`~collectbus.errors.ParseError` naming the source and the 1-based line.
Numbers follow :mod:`.numbers`: NaN, infinities and totals out of range are
None, named in the ``replaced`` list.
"""

from __future__ import annotations

import re

from collectbus.collectors.host.numbers import INF, INT64_MAX, counter, note, real
from collectbus.errors import ParseError
from collectbus.records import PsiRow, UptimeRow
from collectbus.values import finite, fit_counter

__all__ = ["PSI_RESOURCES", "parse_pressure", "parse_uptime"]

#: The files of /proc/pressure, in the order a sample holds them.
PSI_RESOURCES = ("cpu", "memory", "io")

# Documentation/accounting/psi.rst (Linux 4.20):
#   some avg10=0.00 avg60=0.00 avg300=0.00 total=0
#   full avg10=0.00 avg60=0.00 avg300=0.00 total=0
# cpu has a "full" line only since Linux 5.13 (always zero at the system level).
_PSI_KEYS = (b"avg10", b"avg60", b"avg300", b"total")


def _shown(raw: bytes) -> str:
    text = raw.decode("utf-8", "backslashreplace")
    return repr(text if len(text) <= 60 else text[:60] + "...")


_Psi = tuple[float | None, float | None, float | None, int | None]
# The names of a PsiRow's values (``some_avg10`` ... ``full_total_us``).
_PSI_FIELDS = PsiRow._fields[1:]


def _psi_line(line: bytes, source: str, number: int) -> _Psi:
    fields = line.split()
    if len(fields) != 1 + len(_PSI_KEYS):
        raise ParseError(source, number, f"expected 'avg10= avg60= avg300= total=': {_shown(line)}")
    values: list[bytes] = []
    for field, key in zip(fields[1:], _PSI_KEYS, strict=True):
        name, eq, value = field.partition(b"=")
        if name != key or not eq:
            raise ParseError(source, number, f"expected {key.decode()}=: {_shown(field)}")
        values.append(value)
    try:
        return real(values[0]), real(values[1]), real(values[2]), counter(values[3])
    except ValueError as err:
        raise ParseError(source, number, f"not a number: {_shown(line)}") from err


# The whole file as the kernel prints it (psi_show: "%s avg10=%lu.%02lu avg60=...
# total=%llu\n"); a file that does not match goes to the line-by-line parser.
# An average of at most 20 digits before its point is finite; a total of 19
# digits or fewer may still pass 2**63 - 1: it is checked.
_PSI_LINE = (
    rb" avg10=(\d{1,20}\.\d+) avg60=(\d{1,20}\.\d+) avg300=(\d{1,20}\.\d+) total=(\d{1,19})"
    rb"\n"
)
_PSI_FILE = re.compile(b"some" + _PSI_LINE + b"full" + _PSI_LINE)


def parse_pressure(
    data: bytes, resource: str, source: str = "pressure", *, replaced: list[str] | None = None
) -> PsiRow:
    """Parse one /proc/pressure file; ``full`` is None when the file has no such line.

    The usual two-line file is matched whole by one regular expression;
    anything else is parsed line by line, which names a malformed line.
    """
    match = _PSI_FILE.fullmatch(data)
    if match is None:
        return _parse_pressure_lines(data, resource, source, replaced)
    a10, a60, a300, total, f10, f60, f300, full_total = match.groups()
    # The averages as matched are finite; a total may pass 2**63 - 1 (None, named).
    some, full = int(total), int(full_total)
    totals: tuple[int | None, int | None] = (some, full)
    if (some | full) > INT64_MAX:
        totals = fit_counter(some), fit_counter(full)
        note(replaced, f"psi.{resource}", _PSI_FIELDS[3::4], totals)
    return PsiRow(
        resource,
        float(a10),
        float(a60),
        float(a300),
        totals[0],
        float(f10),
        float(f60),
        float(f300),
        totals[1],
    )


def _parse_pressure_lines(
    data: bytes, resource: str, source: str, replaced: list[str] | None = None
) -> PsiRow:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    some: _Psi | None = None
    full: _Psi | None = None
    for number, line in enumerate(lines, 1):
        kind = line.split(b" ", 1)[0]
        if kind == b"some" and some is None:
            some = _psi_line(line, source, number)
            note(replaced, f"psi.{resource}", _PSI_FIELDS[:4], some)
        elif kind == b"full" and full is None:
            full = _psi_line(line, source, number)
            note(replaced, f"psi.{resource}", _PSI_FIELDS[4:], full)
        else:
            raise ParseError(source, number, f"expected a 'some' or 'full' line: {_shown(line)}")
    if some is None:
        raise ParseError(source, None, "no 'some' line")
    if full is None:
        return PsiRow(resource, *some, None, None, None, None)
    return PsiRow(resource, *some, *full)


def parse_uptime(
    data: bytes, source: str = "uptime", *, replaced: list[str] | None = None
) -> UptimeRow:
    """Parse /proc/uptime: ``222.35 356.69``, seconds up and idle (``man 5 proc``)."""
    fields = data.split()
    if len(fields) != 2 or data.count(b"\n") > 1:
        raise ParseError(source, 1, f"expected 'uptime idle' in seconds: {_shown(data)}")
    try:
        up, idle = float(fields[0]), float(fields[1])
    except ValueError as err:
        raise ParseError(source, 1, f"not a number of seconds: {_shown(data)}") from err
    if -INF < up + idle < INF:
        return UptimeRow(up, idle)
    row = UptimeRow(finite(up), finite(idle))
    note(replaced, "uptime", UptimeRow._fields, row)
    return row
