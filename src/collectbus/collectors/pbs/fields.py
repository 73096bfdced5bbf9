"""Parsing PBS attribute values: times, durations, sizes, hosts, exit codes, states.

Every function takes the value as ``qstat``/``pbsnodes -F json`` prints it and
raises :class:`ValueError` with a short reason when it cannot read it; the
caller names the job and the attribute. A number that is read but cannot be
held (NaN, an infinity, a time past year 9999) raises :class:`OutOfRange`, a
ValueError: the caller stores None and names the value in the collection's
details (:mod:`collectbus.values`). The formats are those of the PBS
Professional Reference Guide (2022.1), chapter "Formats" and the attribute
tables of chapter "Attributes".
"""

from __future__ import annotations

import math
import re
from datetime import datetime, tzinfo

__all__ = [
    "OutOfRange",
    "exit_signal",
    "job_state",
    "parse_bool",
    "parse_duration",
    "parse_exec_host",
    "parse_exec_vnode",
    "parse_size",
    "parse_state_count",
    "parse_time",
]

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_NS = 1_000_000_000


class OutOfRange(ValueError):
    """A number was read, but no column can hold it (see :mod:`collectbus.values`)."""


def whole(number: float) -> int:
    """``int(number)``; OutOfRange for NaN and infinities."""
    if not math.isfinite(number):
        raise OutOfRange(f"{number!r} is not a finite number")
    return int(number)


def parse_time(text: str, zone: tzinfo | None) -> int:
    """UTC nanoseconds from a PBS time such as ``"Tue Oct  4 21:23:20 2022"``.

    PBS prints ``ctime``, ``qtime``, ``etime``, ``stime``, ``mtime`` and
    ``obittime`` with ``ctime(3)``: local time of the server, no zone, the day
    padded with a space. ``zone`` is the server's zone; None means this
    machine's local zone. In the hour repeated when clocks go back, the first
    occurrence is taken (``fold=0``). Parsed by hand, not with ``strptime``,
    whose ``%a``/``%b`` follow the locale.
    """
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(f"{_short(text)} is not a PBS time like 'Tue Oct  4 21:23:20 2022'")
    _, month, day, clock, year = parts
    try:
        hour, minute, second = clock.split(":")
        when = datetime(
            int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=zone
        )
    except (KeyError, ValueError) as err:
        raise ValueError(
            f"{_short(text)} is not a PBS time like 'Tue Oct  4 21:23:20 2022'"
        ) from err
    except OverflowError as err:
        raise OutOfRange(f"{_short(text)}: a date out of range") from err
    try:
        return int(when.timestamp()) * _NS
    except (OverflowError, ValueError) as err:  # near year 1 or 9999 in some zones
        raise OutOfRange(f"{_short(text)}: a date out of range") from err


def _short(value: object) -> str:
    """``repr(value)``, bounded, for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_duration(value: object) -> int:
    """Seconds from ``[[HHH:]MM:]SS`` (hours may pass 24; ``eligible_time``,
    ``walltime``, ``cput``) or from a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return whole(value)
    if not isinstance(value, str):
        raise ValueError(f"{_short(value)} is not a duration")
    total = 0
    fields = value.strip().split(":")
    if not 1 <= len(fields) <= 3:
        raise ValueError(f"{_short(value)} is not a duration like 'HHH:MM:SS'")
    try:
        for part in fields:
            total = total * 60 + whole(float(part))
    except OutOfRange:
        raise
    except ValueError as err:
        raise ValueError(f"{_short(value)} is not a duration like 'HHH:MM:SS'") from err
    return total


# PBS RG "Size": an integer and an optional unit, b or w (word), with the
# prefixes k, m, g, t, p as powers of 1024; no unit means bytes. A word is 8
# bytes on every 64-bit execution host.
_SIZE = re.compile(r"^\s*(\d+)\s*([kmgtp]?)([bw]?)\s*$", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}
WORD_BYTES = 8


def parse_size(value: object) -> int:
    """Bytes from a PBS size: ``8gb``, ``4194304kb``, ``512mb``, ``2w``, ``100``."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int):
        return value
    if not isinstance(value, str) or not (m := _SIZE.match(value)):
        raise ValueError(f"{_short(value)} is not a size like '8gb'")
    number, prefix, unit = m.groups()
    if len(number) > 30:
        raise OutOfRange(f"{_short(value)}: a size out of range")
    scale = WORD_BYTES if unit.lower() == "w" else 1
    power: int = 1024 ** _POWERS[prefix.lower()]
    return int(number) * scale * power


def parse_bool(value: object) -> bool:
    """PBS booleans are the strings ``"True"``/``"False"`` (any case, or 1/0, y/n)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    text = value.strip().lower() if isinstance(value, str) else ""
    if text in ("true", "t", "1", "y", "yes"):
        return True
    if text in ("false", "f", "0", "n", "no"):
        return False
    raise ValueError(f"{_short(value)} is not a boolean")


def parse_state_count(value: object) -> tuple[tuple[str, int], ...]:
    """``"Transit:0 Queued:9 Held:2 ..."`` into ``(("Transit", 0), ("Queued", 9), ...)``."""
    if not isinstance(value, str):
        raise ValueError(f"{_short(value)} is not a state_count string")
    pairs = []
    for item in value.split():
        name, sep, count = item.partition(":")
        if not sep or not (count.isascii() and count.isdigit()):
            raise ValueError(f"{_short(item)} in state_count is not 'State:count'")
        if len(count) > 18:
            raise OutOfRange(f"{_short(item)} in state_count: a count out of range")
        pairs.append((name, int(count)))
    return tuple(pairs)


def parse_exec_host(value: str) -> tuple[str, ...]:
    """Host names, in order and once each, from ``exec_host`` (or ``exec_host2``).

    The format is ``host/N[*C][+host/N[*C]...]`` (RG ``exec_host``); ``exec_host2``
    adds ``:port`` after the host, which is dropped.
    """
    hosts: dict[str, None] = {}
    for chunk in value.split("+"):
        host = chunk.split("/", 1)[0].split(":", 1)[0].strip()
        if not host:
            raise ValueError(f"{value!r}: empty host in exec_host")
        hosts[host] = None
    return tuple(hosts)


def parse_exec_vnode(value: str) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """``(vn1:ncpus=2:mem=4gb)+(vn2:ncpus=2)`` into ``(("vn1", (("ncpus", "2"), ...)), ...)``.

    A chunk spread over several vnodes is written ``(vnA:ncpus=1+vnB:ncpus=1)``;
    each vnode is listed on its own.
    """
    out = []
    for chunk in value.split(")+("):
        for piece in chunk.strip("()").split("+"):
            name, *resources = piece.split(":")
            if not name:
                raise ValueError(f"{value!r}: empty vnode in exec_vnode")
            pairs = []
            for res in resources:
                key, sep, amount = res.partition("=")
                if not sep:
                    raise ValueError(f"{res!r} in exec_vnode is not 'resource=value'")
                pairs.append((key, amount))
            out.append((name, tuple(pairs)))
    return tuple(out)


def exit_signal(status: int | None) -> int | None:
    """The signal that killed a job, from its ``Exit_status``.

    PBS Professional Administrator's Guide, "Job Exit Status Codes": a negative
    status is PBS's own code (``JOB_EXEC_*``, e.g. -29 walltime exceeded) and
    no signal; 0 to 127 is the exit value of the job's top process; 128 and
    above means a signal killed it: ``status % 256`` when PBS added 256 to the
    signal (``status >= 256``), else ``status - 128`` (the shell's 128 + N).
    """
    if status is None or status < 128:
        return None
    if status >= 256:
        return status % 256 or None
    return status - 128


# PBS job_state letters (RG "Job States"), mapped to the neutral states.
_BY_LETTER = {
    "Q": "queued",  # queued, eligible to run or be routed
    "W": "queued",  # waiting for its requested execution time
    "T": "queued",  # in transit to another queue or server
    "H": "held",
    "R": "running",
    "E": "running",  # exiting after having run
    "B": "running",  # array job: at least one subjob has started
    "S": "suspended",
    "U": "suspended",  # suspended because its workstation became busy
    "M": "unknown",  # moved to another server: its end is not seen here
}

# RG "Job Substates": 91 terminated (deleted), 92 finished, 93 failed.
SUBSTATE_TERMINATED = 91
SUBSTATE_FINISHED = 92
SUBSTATE_FAILED = 93
# Administrator's Guide, "Job Exit Status Codes": JOB_EXEC_KILL_WALLTIME.
EXIT_WALLTIME = -29


def job_state(letter: str, substate: int | None, exit_status: int | None) -> str:
    """The neutral state (:data:`collectbus.records.JOB_STATES`) of a PBS job.

    ``F`` (finished, kept by job history) and ``X`` (a finished subjob) are
    told apart by the substate and ``Exit_status``: substate 91 is a job
    deleted (cancelled), before or while running; -29 is the walltime kill;
    0 is success; any other status a failure. Without a status, substate 92
    is taken as completed and 93 as failed.
    """
    if letter in ("F", "X"):
        if substate == SUBSTATE_TERMINATED:
            return "cancelled"
        if exit_status == EXIT_WALLTIME:
            return "timeout"
        if exit_status == 0:
            return "completed"
        if exit_status is not None:
            return "failed"
        if substate == SUBSTATE_FINISHED:
            return "completed"
        if substate == SUBSTATE_FAILED:
            return "failed"
        return "unknown"
    return _BY_LETTER.get(letter, "unknown")
