"""Pure parsers of the per-process files: ``/proc/<pid>/stat``, ``status``, ``io``, ``cmdline``.

Each takes the file's bytes and the path it came from, and returns what the
process collector needs, or raises :class:`~collectbus.errors.ParseError`
naming the file (``man 5 proc``).

``stat`` is one line: ``pid (comm) state ppid ...``. The name, ``comm``, may
hold spaces, parentheses and even newlines (``(a) b)``, ``(x\\ny)``): it
ends at the **last** ``)`` of the line, as the kernel prints nothing after it
that holds one. The fields read after it, counted from 1 as in ``man 5 proc``:
``utime`` (14), ``stime`` (15), ``num_threads`` (20), ``starttime`` (22) and
``rss`` (24, pages).
"""

from __future__ import annotations

from typing import NamedTuple

from collectbus.errors import ParseError

__all__ = ["ProcStat", "parse_cmdline", "parse_io", "parse_stat", "parse_statm", "parse_uid"]

# Offsets in the fields after ``comm)``: the state is field 3, at offset 0.
_UTIME, _STIME, _THREADS, _STARTTIME, _RSS = 14 - 3, 15 - 3, 20 - 3, 22 - 3, 24 - 3
_FIELDS_AFTER_COMM = _RSS + 1


class ProcStat(NamedTuple):
    """What the collector keeps of one ``/proc/<pid>/stat``."""

    pid: int
    name: str
    #: utime + stime, in clock ticks (``SC_CLK_TCK``).
    cpu_ticks: int
    threads: int
    #: Start time after boot, in clock ticks.
    start_ticks: int
    rss_pages: int


def parse_stat(data: bytes, source: str) -> ProcStat:
    """One process's ``stat`` line; ParseError when it is not one."""
    head, close, rest = data.rpartition(b")")
    pid_text, open_, comm = head.partition(b" (")
    if not close or not open_:
        raise ParseError(source, 1, "not a 'pid (comm) state ...' line")
    fields = rest.split()
    if len(fields) < _FIELDS_AFTER_COMM:
        raise ParseError(
            source,
            1,
            f"{len(fields)} fields after the name, expected at least {_FIELDS_AFTER_COMM}",
        )
    try:
        pid = int(pid_text)
        utime, stime = int(fields[_UTIME]), int(fields[_STIME])
        threads = int(fields[_THREADS])
        start = int(fields[_STARTTIME])
        rss = int(fields[_RSS])
    except ValueError as err:
        raise ParseError(source, 1, f"not a number: {err}") from None
    if min(pid, utime, stime, threads, start) < 0:
        raise ParseError(source, 1, "a negative pid, time or thread count")
    # A process's RSS can read below zero for an instant (per-CPU counters not
    # folded yet): it is none then.
    return ProcStat(pid, comm.decode(errors="replace"), utime + stime, threads, start, max(rss, 0))


def parse_statm(data: bytes, source: str) -> int:
    """Resident pages, the second number of ``statm``.

    ``stat``'s ``rss`` is read without folding the per-CPU counters (it may
    trail by a few dozen pages on a busy process); ``statm``'s sums them (Linux
    6.2 and later), as ``ps`` and psutil read it. So ``stat``'s ranks the
    processes, and ``statm``'s is the RSS of those chosen.
    """
    fields = data.split()
    try:
        resident = int(fields[1])
    except (IndexError, ValueError):
        raise ParseError(source, 1, f"not a statm line: {data[:80]!r}") from None
    if resident < 0:
        raise ParseError(source, 1, "a negative resident size")
    return resident


def parse_uid(data: bytes, source: str) -> int:
    """The real uid of ``status``'s ``Uid:`` line (real, effective, saved, fs)."""
    for line in data.splitlines():
        if line.startswith(b"Uid:"):
            fields = line.split()
            try:
                return int(fields[1])
            except (IndexError, ValueError):
                raise ParseError(source, None, f"not a 'Uid:' line: {line[:80]!r}") from None
    raise ParseError(source, None, "no 'Uid:' line")


def parse_io(data: bytes, source: str) -> tuple[int, int]:
    """``read_bytes`` and ``write_bytes`` of ``io``: what went to storage."""
    found: dict[bytes, int] = {}
    for line in data.splitlines():
        key, colon, value = line.partition(b":")
        if key in (b"read_bytes", b"write_bytes"):
            try:
                found[key] = int(value)
            except ValueError:
                raise ParseError(source, None, f"not a number: {line[:80]!r}") from None
            if not colon or found[key] < 0:
                raise ParseError(source, None, f"not a 'key: count' line: {line[:80]!r}")
    try:
        return found[b"read_bytes"], found[b"write_bytes"]
    except KeyError as missing:
        raise ParseError(source, None, f"no {missing.args[0].decode()} line") from None


def parse_cmdline(data: bytes, name: str) -> str:
    """The arguments of ``cmdline`` joined by spaces; ``[name]`` when empty (a
    kernel thread, or a zombie), as ps shows it."""
    args = data.rstrip(b"\0")
    if not args:
        return f"[{name}]"
    return args.replace(b"\0", b" ").decode(errors="replace")
