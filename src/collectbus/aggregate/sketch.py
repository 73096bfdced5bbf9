"""A mergeable, retractable quantile sketch with logarithmic buckets.

The DDSketch mapping (Masson, Rim and Lee, "DDSketch: a fast and fully-mergeable
quantile sketch with relative-error guarantees", VLDB 2019): a positive value
``x`` falls in bucket ``i = ceil(ln(x) / ln(gamma))`` with
``gamma = (1 + a) / (1 - a)``, so every quantile is returned within a relative
error ``a`` (1 % here). Negative values use the same mapping on ``-x``; values
within :data:`ZERO_BAND` of zero share one bucket.

A sketch is only counts per bucket, so merging is adding counts and removing a
row is subtracting them: exact, in any order. The bucket of each value is
computed by the database, in the same SQL expression for every path (new rows,
trigger-logged old values, full refresh), so that the incremental state and a
full recompute can never disagree by a rounding of ``ln``. The bucket code is
one integer: ``2 i`` for a positive value, ``2 i + 1`` for a negative one and
:data:`ZERO_CODE` for zero.

The buckets double as a Prometheus histogram: :meth:`LogSketch.cumulative`
gives ``(le, count)`` pairs of the buckets in use.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from array import array
from collections.abc import Iterable, Iterator, Mapping

try:  # Counter's own counting loop, in C
    from collections import _count_elements  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - other Pythons

    def _count_elements(mapping: dict[int, int], iterable: Iterable[int]) -> None:
        get = mapping.get
        for element in iterable:
            mapping[element] = get(element, 0) + 1


RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
LN_GAMMA = math.log(GAMMA)
#: Values with ``abs(x) <= ZERO_BAND`` count as zero.
ZERO_BAND = 1e-9
#: Far above the code of any finite double (about 2 x 35,000).
ZERO_CODE = 1_000_000_000


def bucket_sql(column: str) -> str:
    """The SQL expression giving the bucket code of ``column`` (NULL stays NULL).

    Works in SQLite (3.35+, with its math functions) and PostgreSQL alike. The
    value is cast to a double first: PostgreSQL would otherwise take ``ln`` of
    an integer column as ``numeric``, which is many times slower.
    """
    lg = repr(LN_GAMMA)
    x = f"CAST({column} AS DOUBLE PRECISION)"
    return (
        f"CASE WHEN {column} IS NULL THEN NULL"
        f" WHEN {column} > {ZERO_BAND!r} THEN CAST(ceil(ln({x}) / {lg}) AS BIGINT) * 2"
        f" WHEN {column} < -{ZERO_BAND!r} THEN CAST(ceil(ln(-{x}) / {lg}) AS BIGINT) * 2 + 1"
        f" ELSE {ZERO_CODE} END"
    )


def bucket_of(value: float) -> int:
    """The bucket code of ``value``, computed in Python (for tests and examples)."""
    if value > ZERO_BAND:
        return math.ceil(math.log(value) / LN_GAMMA) * 2
    if value < -ZERO_BAND:
        return math.ceil(math.log(-value) / LN_GAMMA) * 2 + 1
    return ZERO_CODE


def _order(code: int) -> tuple[int, int]:
    """Sort key putting buckets in value order: negatives, zero, positives."""
    if code == ZERO_CODE:
        return (0, 0)
    if code % 2:
        return (-1, -(code - 1) // 2)
    return (1, code // 2)


def bucket_value(code: int) -> float:
    """The value a bucket stands for (within the relative accuracy of its members)."""
    if code == ZERO_CODE:
        return 0.0
    index = (code - 1) // 2 if code % 2 else code // 2
    magnitude = 2 * GAMMA**index / (GAMMA + 1)
    return -magnitude if code % 2 else magnitude


def bucket_upper(code: int) -> float:
    """The upper bound of a bucket: every value in it is ``<=`` this."""
    if code == ZERO_CODE:
        return ZERO_BAND
    if code % 2:
        index = (code - 1) // 2
        return -(GAMMA ** (index - 1))
    return float(GAMMA ** (code // 2))


#: At most about this many characters of codes wait to be counted.
PENDING_CHARS = 1 << 20


def codes_text(codes: str) -> str:
    """The stored form of a JSON array of codes, each counted once: new rows'
    buckets as the database gave them, stored without counting them first."""
    return "c:" + codes


class LogSketch:
    """Counts per bucket code; add, remove and merge are exact.

    Codes handed over as the text of a JSON array (:meth:`add_codes`, new rows'
    buckets as the database joins them) are kept as text and counted when
    the counts are first read: an update adds the codes of a few dozen rows to
    each group it touches, and only writes a group's full sketch now and then
    (when it folds it), so the texts of many updates are counted at once.
    """

    __slots__ = ("_counts", "_pending", "_texts")

    def __init__(self, counts: Mapping[int, int] | None = None) -> None:
        self._counts: dict[int, int] = {k: v for k, v in (counts or {}).items() if v}
        self._texts: list[str] = []
        self._pending = 0

    @property
    def counts(self) -> dict[int, int]:
        if self._texts:
            self._count_texts()
        return self._counts

    @counts.setter
    def counts(self, value: dict[int, int]) -> None:
        self._counts, self._texts, self._pending = value, [], 0

    def _count_texts(self) -> None:
        texts, self._texts, self._pending = self._texts, [], 0
        inner = ",".join(t[1:-1] for t in texts)
        counts = self._counts
        _count_elements(counts, json.loads(f"[{inner}]"))
        # A delta sketch (or one retracted from before its texts were
        # counted) held negative counts: those the texts cancelled are gone.
        for code in [c for c, n in counts.items() if not n]:
            del counts[code]

    def add(self, code: int, count: int = 1) -> None:
        counts = self.counts
        total = counts.get(code, 0) + count
        if total:
            counts[code] = total
        else:
            del counts[code]

    def add_codes(self, codes: str) -> None:
        """Count each code of a JSON array of integers once: the form in
        which the database hands over the buckets of new rows. Counted when
        the counts are next read, or once :data:`PENDING_CHARS` are waiting."""
        if len(codes) > 2:  # not "" nor "[]"
            self._texts.append(codes)
            self._pending += len(codes)
            if self._pending >= PENDING_CHARS:
                self._count_texts()

    def merge(self, other: LogSketch, sign: int = 1) -> None:
        """Add (``sign=1``) or subtract (``sign=-1``) another sketch's counts."""
        if sign == 1 and other._texts:  # added uncounted, as they are
            self._texts += other._texts
            self._pending += other._pending
        counts = self._counts if sign == 1 else self.counts
        for code, count in (other._counts if sign == 1 else other.counts).items():
            total = counts.get(code, 0) + sign * count
            if total:
                counts[code] = total
            else:
                del counts[code]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def sorted_buckets(self) -> Iterator[tuple[int, int]]:
        """(code, count) in value order."""
        for code in sorted(self.counts, key=_order):
            yield code, self.counts[code]

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1), or None for an empty sketch."""
        total = self.total
        if total <= 0:
            return None
        rank = q * (total - 1)
        seen = 0
        last = ZERO_CODE
        for code, count in self.sorted_buckets():
            seen += count
            last = code
            if seen > rank:
                break
        return bucket_value(last)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(le, cumulative count)`` per bucket in use, in value order; the
        ``+Inf`` bucket is the total."""
        out: list[tuple[float, int]] = []
        seen = 0
        for code, count in self.sorted_buckets():
            seen += count
            out.append((bucket_upper(code), seen))
        out.append((math.inf, seen))
        return out

    def to_json(self) -> str:
        """A compact JSON string: a format tag, then the base64 of the
        little-endian codes followed by their counts, as int32 (``"j"``) when
        they fit, else int64 (``"k"``). The tag ends with ``:``, which no
        base64 of the first encoding holds. :meth:`from_json` also reads
        ``"c:"`` and a JSON array of codes, each counted once
        (:func:`codes_text`)."""
        counts = self.counts
        n = len(counts)
        try:
            packed = struct.pack(f"<{2 * n}i", *counts.keys(), *counts.values())
            kind = "j:"
        except struct.error:  # a count past 2**31
            packed = struct.pack(f"<{2 * n}q", *counts.keys(), *counts.values())
            kind = "k:"
        return kind + base64.b64encode(packed).decode("ascii")

    @classmethod
    def from_json(cls, data: str) -> LogSketch:
        new = cls()
        if data[:2] == "c:":
            new.add_codes(data[2:])
            return new
        width = {"j:": 4, "k:": 8}.get(data[:2])
        if width is not None:
            raw = base64.b64decode(data[2:])
            n = len(raw) // (2 * width)
            flat = struct.unpack(f"<{2 * n}{'i' if width == 4 else 'q'}", raw)
            new.counts = dict(zip(flat[:n], flat[n:], strict=True))
            return new
        # The first encoding: native int64 pairs ``code, count, ...``.
        pairs = array("q")
        pairs.frombytes(base64.b64decode(data))
        new.counts = dict(zip(pairs[::2], pairs[1::2], strict=True))
        return new

    @classmethod
    def of(cls, codes: Iterable[int]) -> LogSketch:
        sketch = cls()
        for code in codes:
            sketch.add(code)
        return sketch

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LogSketch) and self.counts == other.counts

    def __repr__(self) -> str:
        return f"LogSketch({self.counts!r})"

    __hash__ = None  # type: ignore[assignment]
