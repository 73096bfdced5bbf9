"""Slurm's words, mapped to collectbus's neutral ones; pure functions shared by the parsers.

Job states are those of ``man squeue`` (JOB STATE CODES) and ``man sacct``
(JOB STATE CODES); node states those of ``man sinfo`` (NODE STATE CODES).
Slurm 22.05 prints a job's base state, or a flag that takes its place
(``COMPLETING``, ``CONFIGURING``, ``REQUEUED``, ...).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, tzinfo

from collectbus.clock import NS_PER_S
from collectbus.values import fit_int64

_JOB_STATES = {
    "PENDING": "queued",
    "REQUEUED": "queued",  # squeue: the job waits again, under its new submit time
    "REQUEUE_FED": "queued",
    "REQUEUE_HOLD": "held",
    "RESV_DEL_HOLD": "held",
    "CONFIGURING": "running",  # resources allocated, nodes booting
    "RUNNING": "running",
    "COMPLETING": "running",  # ended, epilogs still running on its nodes
    "SIGNALING": "running",
    "STAGE_OUT": "running",
    "RESIZING": "running",
    "SUSPENDED": "suspended",
    "STOPPED": "suspended",
    "COMPLETED": "completed",
    "FAILED": "failed",
    "NODE_FAIL": "failed",
    "BOOT_FAIL": "failed",
    "OUT_OF_MEMORY": "failed",
    "SPECIAL_EXIT": "failed",
    "CANCELLED": "cancelled",
    "PREEMPTED": "cancelled",  # killed to make room: ended by the system, not by its own doing
    "REVOKED": "cancelled",  # a federated sibling started elsewhere
    "TIMEOUT": "timeout",
    "DEADLINE": "timeout",  # killed at its --deadline
}

#: Reasons of a PENDING job that make it held (``man squeue``, JOB REASON CODES).
HELD_REASONS = frozenset({"JobHeldUser", "JobHeldAdmin"})

_NO_REASON = frozenset({"", "None", "none"})


def job_state(native: str, reason: str | None = None) -> str:
    """The neutral state of a Slurm job state (``"CANCELLED by 0"`` reads as CANCELLED)."""
    word = native.split()[0].upper() if native.strip() else ""
    state = _JOB_STATES.get(word, "unknown")
    if word == "PENDING" and reason in HELD_REASONS:
        return "held"
    return state


#: What a run that ``sacct`` reports as REQUEUED became: Slurm ended it and queued the
#: job again under a new submit time, which is another job (see the README, "Job lives").
REQUEUED_RUN = "cancelled"

#: Final states in which Slurm, not the job, ended the job. Accounting records
#: the job's exit code as it was then (0:0); the status ``squeue`` shows later is
#: the signal Slurm sent its processes afterwards.
ENDED_BY_SLURM = frozenset({"CANCELLED", "TIMEOUT", "DEADLINE", "PREEMPTED", "REQUEUED"})

_FINAL = frozenset({"completed", "failed", "cancelled", "timeout"})


def job_exit(
    native: str, state: str, status: int | None, signal: int | None
) -> tuple[int | None, int | None]:
    """The (exit status, signal) collectbus stores, one rule for every source.

    - A job that is not final has none.
    - A job Slurm ended (:data:`ENDED_BY_SLURM`) has exit 0 and no signal, as
      accounting records it, whatever the source says.
    - Otherwise the job's own status or signal, as the source read it (None
      when the source lost it).
    """
    if state not in _FINAL:
        return None, None
    word = native.split()[0].upper() if native.strip() else ""
    if word in ENDED_BY_SLURM:
        return 0, None
    return status, signal


#: Node lists of a job that was given no node.
_NO_NODES = frozenset({"", "None assigned", "(null)", "N/A", "None"})


def ran(nodes: str | None) -> bool:
    """Whether a job was given nodes, and so started; a job that ended without
    nodes never ran, though Slurm then sets its start time to its end."""
    return (nodes or "").strip() not in _NO_NODES


def substate(reason: str | None) -> str | None:
    """The pending or ending reason, or None when Slurm gives none."""
    if reason is None or reason in _NO_REASON:
        return None
    return reason


# ------------------------------------------------------------------ nodes

_NODE_BASE = {
    "IDLE": "idle",
    "MIXED": "mixed",
    "ALLOCATED": "allocated",
    "DOWN": "down",
    "ERROR": "down",
    "FUTURE": "offline",
    "UNKNOWN": "unknown",
}


def node_state(base: str, flags: tuple[str, ...]) -> str:
    """The neutral state of a node from its base state and flags (``man sinfo``).

    A drained or draining node is ``drained``; one that does not respond is
    ``down``; powered down is ``offline``; in a maintenance reservation is
    ``reserved``. Otherwise the base state decides.
    """
    upper = {f.upper() for f in flags}
    word = base.upper()
    if word == "DOWN" or "NOT_RESPONDING" in upper:
        return "down"
    if upper & {"DRAIN", "DRAINED", "DRAINING", "FAIL"}:
        return "drained"
    if upper & {"POWERED_DOWN", "POWER_DOWN", "POWERING_DOWN"}:
        return "offline"
    if upper & {"MAINTENANCE", "RESERVED"}:
        return "reserved"
    return _NODE_BASE.get(word, "unknown")


# ------------------------------------------------------------ exit codes


def decode_wait_status(raw: int) -> tuple[int | None, int | None]:
    """(exit status, signal) of a raw wait status, as Slurm keeps ``exit_code``.

    ``man 2 waitpid``: the low 7 bits are the signal that ended the process
    (0 when it exited), the next byte its exit status. 768 is exit 3; 15 is
    SIGTERM, which is how a job killed at its time limit ends.
    """
    signal = raw & 0x7F
    if signal:
        return None, signal
    return (raw >> 8) & 0xFF, None


def decode_exit_pair(text: str) -> tuple[int | None, int | None]:
    """(exit status, signal) of Slurm's ``"3:0"`` text (exit code, then signal)."""
    code, _, sig = text.strip().partition(":")
    try:
        status, signal = int(code), int(sig or "0")
    except ValueError:
        return None, None
    if signal:
        return None, fit_int64(signal)
    return fit_int64(status), None


# ------------------------------------------------------------------ times


def epoch_ns(value: object) -> int | None:
    """Nanoseconds of an epoch-seconds int; 0, None and negatives are unset."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return fit_int64(value * NS_PER_S)


_UNSET_TIMES = frozenset({"", "Unknown", "None", "N/A", "(null)", "0"})


def text_time_ns(text: str, tz: tzinfo) -> int | None:
    """Nanoseconds of a time Slurm printed: epoch seconds (``SLURM_TIME_FORMAT=%s``)
    or ISO 8601 without a zone, in ``tz`` (Slurm prints local time)."""
    text = text.strip()
    if text in _UNSET_TIMES:
        return None
    if text.isascii() and text.isdigit():
        return fit_int64(int(text) * NS_PER_S) if len(text) <= 19 else None
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=tz)
    try:
        return int(stamp.timestamp()) * NS_PER_S
    except (OverflowError, ValueError):  # the edges of year 1 and 9999 in some zones
        return None


_DURATION = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def duration_seconds(text: str, *, bare_unit_s: int = 60) -> int | None:
    """Seconds of a Slurm duration: ``days-hh:mm:ss``, ``hh:mm:ss``, ``mm:ss``.

    A bare number is minutes in time limits (``--time=1``), which is how
    jobcomp and ``sacct -c`` print them; ``UNLIMITED`` and ``NONE`` are None.
    """
    text = text.strip()
    m = _DURATION.match(text)
    if m is None:
        return None
    days, a, b, c = m.groups()
    fields = [int(x) for x in (a, b, c) if x is not None]
    if len(fields) == 1 and days is None:
        return fields[0] * bare_unit_s
    if days is not None and len(fields) == 1:
        seconds = fields[0] * 3600  # "2-00" is days-hours
    elif len(fields) == 2 and days is None:
        seconds = fields[0] * 60 + fields[1]  # mm:ss
    elif len(fields) == 2:
        seconds = fields[0] * 3600 + fields[1] * 60  # days-hh:mm
    else:
        seconds = fields[0] * 3600 + fields[1] * 60 + fields[2]
    return fit_int64(int(days or 0) * 86400 + seconds)


_MEM_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}


def tres_map(text: str) -> dict[str, str]:
    """``cpu=1,mem=1000M,node=1,gres/gpu=2`` as a dict of strings."""
    out: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out


def memory_bytes(text: str) -> int | None:
    """Bytes of a Slurm memory size: a number of megabytes, or one with a unit suffix."""
    text = text.strip()
    if not text:
        return None
    unit = text[-1].upper()
    number = text[:-1] if unit in _MEM_UNITS else text
    try:
        value = float(number) * _MEM_UNITS.get(unit, 1 << 20)
    except ValueError:
        return None
    return fit_int64(int(value)) if math.isfinite(value) else None


def tres_int(tres: dict[str, str], key: str) -> int | None:
    value = tres.get(key)
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 19:
        return None
    return fit_int64(int(value))


# -------------------------------------------------------------- hostlists

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


def expand_hostlist(text: str) -> tuple[str, ...]:
    """The host names of a Slurm hostlist: ``node[01-03,7],gpu1`` -> 4 names.

    Zero padding is kept (``01``). Empty text, ``(null)`` and ``None assigned``
    are no hosts. Text that is not a hostlist comes back as one name.
    """
    text = text.strip()
    if text in ("", "(null)", "None assigned", "N/A"):
        return ()
    names: list[str] = []
    for item in _split_top_level(text):
        names.extend(_expand_one(item))
        if len(names) > MAX_HOSTS:
            raise ValueError(f"hostlist of more than {MAX_HOSTS} hosts: {text[:40]!r}")
    return tuple(names)


#: The most hosts a hostlist may name (Slurm's own limit is far lower): a
#: range such as ``n[0-99999999999]`` is refused instead of filling memory.
MAX_HOSTS = 1_000_000


def _split_top_level(text: str) -> list[str]:
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return [item for item in items if item]


def _expand_one(item: str) -> list[str]:
    open_at = item.find("[")
    close_at = item.find("]", open_at + 1)
    if open_at < 0 or close_at < 0:
        return [item]
    prefix, body, rest = item[:open_at], item[open_at + 1 : close_at], item[close_at + 1 :]
    tails = _expand_one(rest) if rest else [""]
    names: list[str] = []
    for part in body.split(","):
        m = _RANGE.match(part)
        if m is None:
            return [item]
        low, high = m.group(1), m.group(2) or m.group(1)
        if len(high) > 18 or int(high) - int(low) >= MAX_HOSTS:
            raise ValueError(f"hostlist range {part[:40]!r} is too large")
        width = len(low)
        for n in range(int(low), int(high) + 1):
            names.extend(f"{prefix}{n:0{width}d}{tail}" for tail in tails)
            if len(names) > MAX_HOSTS:
                raise ValueError(f"hostlist of more than {MAX_HOSTS} hosts: {item[:40]!r}")
    return names
