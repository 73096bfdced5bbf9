"""Times as text: reading a time or a window a user gave, writing RFC 3339.

An ISO time without a zone is local time: the ``TZ`` of the process, which
``collectbus --utc`` sets to UTC. A bare number is epoch seconds, and one
below :data:`MIN_EPOCH_S` (2001-09-09) is refused: ``--since 5`` is much
likelier to mean five minutes than the fifth second of 1970.

Shared by the command line (``--since``/``--until``) and the HTTP API
(``?since=&until=``). A time that cannot be read raises :class:`ValueError`
with a one-line message naming the value; each caller turns it into its own
kind of error (a usage error, an HTTP 400).
"""

from __future__ import annotations

import datetime as dt
import re
import time

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_LATEST_S = 253_402_300_800  # 10000-01-01T00:00:00Z
_REL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: The smallest bare number read as epoch seconds (10^9: 2001-09-09T01:46:40Z).
MIN_EPOCH_S = 1_000_000_000


def parse_time(value: str, *, now_ns: int) -> int:
    """Nanoseconds since the epoch from ``10m`` (ago), an ISO time, ``now`` or epoch seconds."""
    text = value.strip()
    if text == "now":
        return now_ns
    if m := _RELATIVE.match(text):
        result = now_ns - int(float(m.group(1)) * _REL_UNITS[m.group(2)] * 1e9)
    else:
        try:
            seconds = float(text)
        except ValueError:
            try:
                when = dt.datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(
                    f"{value!r} is not a time; use e.g. 15m, 2h, 2026-11-24T10:00, or epoch seconds"
                ) from None
            if when.tzinfo is None:
                when = when.astimezone()
            seconds = when.timestamp()
        else:
            if 0 <= seconds < MIN_EPOCH_S:
                raise ValueError(
                    f"{value!r} is not a time: a bare number is epoch seconds, and one below"
                    f" 10^9 (2001) needs a unit for time ago, e.g. {text}m, {text}h or {text}d"
                )
        if not 0 <= seconds < _LATEST_S:
            raise ValueError(f"{value!r} is not a time between 1970 and 9999")
        result = int(seconds * 1e9)
    if result < 0:
        raise ValueError(f"{value!r} reaches back before 1970")
    return result


def time_window(since: str, until: str) -> tuple[int, int]:
    """``since`` and ``until`` as nanoseconds, checked to be in order."""
    now = time.time_ns()
    since_ns = parse_time(since, now_ns=now)
    until_ns = parse_time(until, now_ns=now)
    if since_ns >= until_ns:
        raise ValueError("--since must be before --until")
    return since_ns, until_ns


def iso_local(ns: int) -> str:
    """Local time with seconds and the zone, for tables: ``2026-12-07 18:30:43 CET``.

    The zone is the process's (``TZ``); ``collectbus --utc`` makes it UTC.
    """
    when = dt.datetime.fromtimestamp(ns / 1e9).astimezone()
    return when.strftime("%Y-%m-%d %H:%M:%S %Z").rstrip()


def use_utc() -> None:
    """Make this process's local time UTC: tables and ISO times without a zone."""
    import os

    os.environ["TZ"] = "UTC"
    time.tzset()


def iso_utc(ns: int) -> str:
    """An RFC 3339 UTC time with milliseconds, for JSON and CSV."""
    when = dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
