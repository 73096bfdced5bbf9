"""The one rule for values that a column cannot hold.

Every number a collector reads (a /proc counter, a PBS or Slurm field, a call's
size, an aggregate's measure) ends up in a signed 64-bit integer column or a
double column. Some sources print values that fit neither: a NIC driver's
``18446744073709551615`` (2^64 - 1, "not available"), a negative counter, a
``nan`` load average, a PBS field of ``1e999``. One such value must never stop
the storage of the others, so each value is decided where it is parsed, by this
rule:

- an integer outside ``[INT64_MIN, INT64_MAX]`` is stored as NULL (``None``);
  a counter below zero likewise (:func:`fit_counter`);
- a float that is NaN or infinite is stored as NULL (:func:`finite`);
- each value so replaced is reported by the parser that met it, by field
  name, and counted in the collection's details (``("out_of_range", N)`` and
  ``("out_of_range_fields", "net.eth0.rx_bytes,...")``) so that it shows in
  ``collection_log.details``, ``collectbus db status`` and the logs.

A value is never wrapped or clipped: a wrapped counter would read as a huge
rate, a clipped one as a plausible lie. NULL says "not known", which every
reader (rates, aggregates, ``/metrics``) already handles.

This module is a leaf: it imports nothing of collectbus.
"""

from __future__ import annotations

import math

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def fits_int64(value: int) -> bool:
    """Whether ``value`` fits a signed 64-bit integer column."""
    return INT64_MIN <= value <= INT64_MAX


def fit_int64(value: int | None) -> int | None:
    """``value`` if it fits a signed 64-bit integer column, else None."""
    if value is None or INT64_MIN <= value <= INT64_MAX:
        return value
    return None


def fit_counter(value: int | None) -> int | None:
    """A counter (never negative) that fits a signed 64-bit column, else None."""
    if value is None or 0 <= value <= INT64_MAX:
        return value
    return None


def finite(value: float | None) -> float | None:
    """``value`` unless it is NaN or infinite (then None)."""
    if value is None or math.isfinite(value):
        return value
    return None


def out_of_range_details(fields: list[str], *, limit: int = 20) -> tuple[tuple[str, str], ...]:
    """The collection details that report values replaced by NULL.

    ``fields`` names each replaced value (``"net.eth0.rx_bytes"``); the details
    carry their count and the first ``limit`` names, so that a flood of bad
    values cannot bloat ``collection_log``. Empty when nothing was replaced.
    """
    if not fields:
        return ()
    shown = ",".join(fields[:limit])
    if len(fields) > limit:
        shown += f",... ({len(fields) - limit} more)"
    return (("out_of_range", str(len(fields))), ("out_of_range_fields", shown))
