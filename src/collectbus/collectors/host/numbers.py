"""The numbers of the host files, decided by :mod:`collectbus.values` as they are parsed.

Every integer a host file prints is a counter or a gauge that cannot be
negative, so it goes through :func:`~collectbus.values.fit_counter`: one above
``2**63 - 1`` (a NIC driver's ``18446744073709551615``) or below zero is None.
A decimal too long for ``int()`` (more than 4,300 digits) is out of range as
well, not malformed. Every float goes through :func:`~collectbus.values.finite`:
``nan`` and ``inf`` are None. The parser that replaces a value appends its
name (``net.eth0.rx_bytes``) to the ``replaced`` list it was given; the
collector puts them in the collection's details with
:func:`~collectbus.values.out_of_range_details`.
"""

from __future__ import annotations

from collections.abc import Iterable

from collectbus.values import INT64_MAX, finite, fit_counter

__all__ = ["INF", "INT64_MAX", "counter", "note", "real"]

#: For the one test of a row of floats: ``-INF < a + b + c < INF`` is False
#: when any is NaN or infinite (and when finite ones overflow: then each is
#: decided by :func:`real`). Likewise ``0 <= a | b | c <= INT64_MAX`` holds
#: exactly when each of the counters does. The parsers of the small files
#: (loadavg, uptime, PSI) test a row so, and only a row that fails goes value by
#: value, which names the values replaced.
INF = float("inf")


def counter(token: bytes | str) -> int | None:
    """A counter from a decimal token; None when it does not fit. ValueError if not an integer."""
    try:
        value = int(token)
    except ValueError:
        digits = token.lstrip(b"+-") if isinstance(token, bytes) else token.lstrip("+-")
        if digits.isdigit() and digits.isascii() and len(digits) > 19:
            return None  # past int()'s digit limit: far out of range, but a number
        raise
    return fit_counter(value)


def real(token: bytes | str) -> float | None:
    """A float from a token; None for NaN and infinities. ValueError if not a number."""
    return finite(float(token))


def note(
    replaced: list[str] | None, prefix: str, names: Iterable[str], values: Iterable[object]
) -> None:
    """Append ``prefix.name`` to ``replaced`` for each value that is None."""
    if replaced is not None:
        replaced.extend(f"{prefix}.{n}" for n, v in zip(names, values, strict=False) if v is None)
