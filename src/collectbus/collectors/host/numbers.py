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

from collections.abc import Iterable, Sequence

from collectbus.values import INT64_MAX, finite, fit_counter

__all__ = ["INT64_MAX", "counter", "fits", "note", "real"]


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


def fits(values: Sequence[int]) -> bool:
    """True when every counter of a fast path's bulk conversion fits (no value replaced)."""
    return not values or (min(values) >= 0 and max(values) <= INT64_MAX)


def note(
    replaced: list[str] | None, prefix: str, names: Iterable[str], values: Iterable[object]
) -> None:
    """Append ``prefix.name`` to ``replaced`` for each value that is None."""
    if replaced is not None:
        replaced.extend(f"{prefix}.{n}" for n, v in zip(names, values, strict=False) if v is None)
