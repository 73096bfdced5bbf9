"""Totals of one group, and what one row contributes to them.

A :class:`Contribution` is what one source row adds to its group: the key, an
error flag, and each measure's value with its sketch bucket. Adding and
retracting contributions is exact for counts, error counts, integer sums and
sketches. A float sum is exact to rounding. min and max cannot be retracted:
when a retracted value was the group's extreme, the group is marked and the
engine recomputes that extreme from the source, for that group only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import NamedTuple

from collectbus.aggregate.sketch import LogSketch, codes_text

Number = int | float
KeyValue = str | int | float | None
GroupKey = tuple[KeyValue, ...]


def number(value: object) -> Number | None:
    """A database value as int or float (PostgreSQL sums and numerics are Decimal;
    SQLite triggers log REALs as text to keep every digit)."""
    if value is None or isinstance(value, int | float):
        return value if not isinstance(value, bool) else int(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, str):
        return float(value)
    raise TypeError(f"not a number: {value!r}")


def key_value(value: object) -> KeyValue:
    if value is None or isinstance(value, str | int | float):
        return value if not isinstance(value, bool) else int(value)
    if isinstance(value, Decimal):
        return number(value)
    return str(value)


class Contribution(NamedTuple):
    """What one row adds to its group (a tuple: an update makes one per
    changed row, twice)."""

    key: GroupKey
    error: int
    #: Per measure: (value, bucket code), or None when the value is NULL.
    values: tuple[tuple[Number, int] | None, ...]

    def to_json(self) -> str:
        """``json.dumps`` of ``[key, error, [[value, code] or null, ...]]``,
        formatted directly for the usual values (text keys, int or finite
        float values: an update writes one per open row it meets)."""
        key, error, values = self
        if type(error) is int and all(type(v) is str for v in key):
            parts = []
            for v in values:
                if v is None:
                    parts.append("null")
                    continue
                value, code = v
                kind = type(value)
                if type(code) is not int or not (
                    kind is int or (kind is float and math.isfinite(value))
                ):
                    break
                parts.append(f"[{value!r}, {code}]")
            else:
                return f"[{key_json(key)}, {error}, [{', '.join(parts)}]]"
        return json.dumps([list(key), error, [list(v) if v else None for v in values]])

    @classmethod
    def from_json(cls, text: str) -> Contribution:
        key, error, values = json.loads(text)
        return cls(tuple(key), int(error), tuple(tuple(v) if v else None for v in values))


def contribution(row: Sequence[object], n_keys: int, n_measures: int) -> Contribution | None:
    """The contribution of ``[pass, keys..., error, value, bucket, ...]``, or None
    when the row does not pass the filters. (Plain ``str``, ``int`` and
    ``float`` values, the usual ones, skip the conversions.)"""
    if not row[0]:
        return None
    key: GroupKey = tuple(row[1 : 1 + n_keys])  # type: ignore[arg-type]
    for part in key:
        if type(part) is not str:
            key = tuple(key_value(k) for k in key)
            break
    flag = row[1 + n_keys]
    error = flag if type(flag) is int else int(number(flag) or 0)
    values: list[tuple[Number, int] | None] = []
    base = 2 + n_keys
    for i in range(n_measures):
        v = row[base + 2 * i]
        code = row[base + 2 * i + 1]
        if v is None or code is None:
            values.append(None)
            continue
        if type(v) is not int and type(v) is not float:
            v = number(v)
        values.append((v, code if type(code) is int else int(str(code))))  # type: ignore[arg-type]
    return Contribution(key, error, tuple(values))


def _close(a: Number | None, b: Number | None) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@dataclass(slots=True)
class MeasureState:
    n: int = 0
    sum: Number = 0
    min: Number | None = None
    max: Number | None = None
    sketch: LogSketch = field(default_factory=LogSketch)

    def add(self, value: Number, code: int, sign: int) -> bool:
        """Add (sign 1) or retract (sign -1) one value; True when an extreme left."""
        self.n += sign
        self.sum += sign * value
        self.sketch.add(code, sign)
        if self.n <= 0:
            self.n, self.sum, self.min, self.max = 0, 0, None, None
            return False
        low, high = self.min, self.max
        if sign > 0:
            if low is None or value < low:
                self.min = value
            if high is None or value > high:
                self.max = value
            return False
        if low is None or high is None or value <= low or value >= high:
            return True
        if type(value) is int and type(low) is int and type(high) is int:
            return False
        return _close(value, low) or _close(value, high)

    def merge(self, other: MeasureState) -> None:
        """Add another partial state of the same measure (the merge law)."""
        if other.n:
            self.merge_totals(other.n, other.sum, other.min, other.max)
            self.sketch.merge(other.sketch)

    def merge_totals(self, n: int, total: Number, low: Number | None, high: Number | None) -> None:
        """Add another partial state's n, sum, min and max (its sketch apart)."""
        if not n:
            return
        self.n += n
        self.sum += total
        if low is not None and (self.min is None or low < self.min):
            self.min = low
        if high is not None and (self.max is None or high > self.max):
            self.max = high

    def same(self, other: MeasureState) -> bool:
        return (
            self.n == other.n
            and _close(self.sum, other.sum)
            and _close(self.min, other.min)
            and _close(self.max, other.max)
            and self.sketch == other.sketch
        )

    def to_json(self) -> dict[str, object]:
        """n, sum, min and max; the sketch is stored apart (:func:`sketches_text`)."""
        return {"n": self.n, "sum": self.sum, "min": self.min, "max": self.max}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> MeasureState:
        return cls(
            n=int(str(data["n"])),
            sum=number(data["sum"]) or 0,
            min=number(data["min"]),
            max=number(data["max"]),
        )


@dataclass(slots=True)
class GroupState:
    """count, errors and the measures of one group."""

    count: int = 0
    errors: int = 0
    measures: list[MeasureState] = field(default_factory=list)
    #: How many delta rows its sketches have in the store, past the base row
    #: (:mod:`~collectbus.aggregate.checkpoint`); not part of the totals.
    parts: int = 0

    @classmethod
    def empty(cls, n_measures: int) -> GroupState:
        return cls(measures=[MeasureState() for _ in range(n_measures)])

    def merge(self, other: GroupState) -> None:
        """Add another partial state of the same group (the merge law)."""
        self.count += other.count
        self.errors += other.errors
        for mine, theirs in zip(self.measures, other.measures, strict=True):
            mine.merge(theirs)

    def same(self, other: GroupState) -> bool:
        return (
            self.count == other.count
            and self.errors == other.errors
            and len(self.measures) == len(other.measures)
            and all(a.same(b) for a, b in zip(self.measures, other.measures, strict=True))
        )

    def measures_json(self, names: Sequence[str]) -> str:
        """The measures as a JSON object by name: what ``json.dumps`` of each
        :meth:`MeasureState.to_json` gives, formatted directly (an update
        writes this for every group it touched)."""
        parts = []
        for name, m in zip(names, self.measures, strict=True):
            parts.append(
                f'{_name_json(name)}: {{"n": {m.n}, "sum": {_json_number(m.sum)},'
                f' "min": {_json_number(m.min)}, "max": {_json_number(m.max)}}}'
            )
        return "{" + ", ".join(parts) + "}"

    def sketches_text(self) -> str:
        """Every measure's sketch, in measure order (see :func:`sketches_text`)."""
        return sketches_text([m.sketch for m in self.measures])

    @classmethod
    def from_row(cls, count: int, errors: int, measures: str, names: Sequence[str]) -> GroupState:
        data = json.loads(measures)
        return cls(
            count=int(count),
            errors=int(errors),
            measures=[
                MeasureState.from_json(data[n]) if n in data else MeasureState() for n in names
            ],
        )


#: Between the sketches of a group's measures in one stored text: neither
#: base64 nor a JSON array of integers holds it.
SKETCH_SEPARATOR = "|"


def _json_number(value: Number | None) -> str:
    """``json.dumps`` of a number or None, without its machinery for the
    usual ones (an int, a finite float: ``str`` and ``repr`` are its output)."""
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is float and math.isfinite(value):  # type: ignore[arg-type]
        return repr(value)
    return json.dumps(value)


@lru_cache(maxsize=1024)
def _name_json(name: str) -> str:
    return json.dumps(name)


def sketches_text(sketches: Sequence[LogSketch]) -> str:
    """Sketches, one per measure, as one text: each :meth:`LogSketch.to_json`,
    joined by :data:`SKETCH_SEPARATOR` (which no encoding holds)."""
    return SKETCH_SEPARATOR.join(s.to_json() for s in sketches)


def sketches_from_text(text: str) -> list[LogSketch]:
    """The sketches of :func:`sketches_text` (none for an empty text)."""
    return [LogSketch.from_json(part) for part in text.split(SKETCH_SEPARATOR)] if text else []


_KEY_JSON: dict[GroupKey, str] = {}


def key_json(key: GroupKey) -> str:
    """The JSON of a group key; remembered for keys of text only (equal
    tuples of numbers can differ in JSON: ``1`` and ``1.0``; text equals text
    alone)."""
    found = _KEY_JSON.get(key)
    if found is not None:
        return found
    out = json.dumps(list(key))
    if all(type(v) is str for v in key):
        if len(_KEY_JSON) >= 100_000:
            _KEY_JSON.clear()
        _KEY_JSON[key] = out
    return out


def key_from_json(text: str) -> GroupKey:
    return tuple(json.loads(text))


def apply_deltas(
    groups: dict[str, GroupState],
    deltas: list[tuple[Contribution, int]],
    n_measures: int,
    changed: dict[str, list[LogSketch]] | None = None,
) -> list[tuple[str, GroupKey, int]]:
    """Apply −/+ contributions; the (group, key, measure) whose extreme left.
    ``changed`` gets, per group, what they changed in its sketches."""
    stale: dict[tuple[str, int], GroupKey] = {}
    if changed is None:
        changed = {}
    for contrib, sign in deltas:
        gkey = key_json(contrib.key)
        group = groups.get(gkey)
        if group is None:
            group = groups[gkey] = GroupState.empty(n_measures)
        sketches = changed.get(gkey)
        if sketches is None:
            sketches = changed[gkey] = [LogSketch() for _ in range(n_measures)]
        group.count += sign
        group.errors += sign * contrib.error
        for i, value in enumerate(contrib.values):
            if value is not None:
                if group.measures[i].add(value[0], value[1], sign):
                    stale[(gkey, i)] = contrib.key
                sketches[i].add(value[1], sign)
    return [(g, key, i) for (g, i), key in stale.items()]


class NewRows(NamedTuple):
    """New rows of one group, aggregated by the database."""

    rows: int
    errors: int
    #: Per measure: n, sum, min and max of their values.
    measures: list[tuple[int, Number, Number | None, Number | None]]
    #: Per measure, the bucket codes of their values: a JSON array's text.
    codes: list[str]


def merge_partial(
    groups: dict[str, GroupState], partial: Iterable[tuple[str, NewRows]], n_measures: int
) -> None:
    """Merge new rows, grouped by the database, into ``groups`` (the merge law):
    ``partial`` is (group key, new rows) pairs, a group's in any number of parts."""
    for key, part in partial:
        group = groups.get(key)
        if group is None:
            group = groups[key] = GroupState.empty(n_measures)
        group.count += part.rows
        group.errors += part.errors
        for state, totals, codes in zip(group.measures, part.measures, part.codes, strict=True):
            state.merge_totals(*totals)
            state.sketch.add_codes(codes)


def sketch_deltas(
    changed: dict[str, list[LogSketch]], partial: dict[str, NewRows]
) -> dict[str, str]:
    """The delta row an update appends for each group whose sketches change:
    what its −/+ contributions changed (``changed``, from :func:`apply_deltas`)
    and its new rows add, as :func:`sketches_text`. New rows alone are stored
    as their codes (:func:`codes_text`), uncounted."""
    out: dict[str, str] = {}
    for gkey, part in partial.items():
        sketches = changed.get(gkey)
        if sketches is None:
            if any(c and c != "[]" for c in part.codes):
                out[gkey] = SKETCH_SEPARATOR.join(codes_text(c) for c in part.codes)
            continue
        for sketch, codes in zip(sketches, part.codes, strict=True):
            sketch.add_codes(codes)
    for gkey, sketches in changed.items():
        if any(s.counts for s in sketches):
            out[gkey] = sketches_text(sketches)
    return out


def same_group(a: GroupState | None, b: GroupState | None) -> bool:
    if a is None or a.count == 0:
        return b is None or b.count == 0
    return b is not None and a.same(b)
