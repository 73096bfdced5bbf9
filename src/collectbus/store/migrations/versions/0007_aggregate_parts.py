"""aggregate_parts: each group as a base row plus a row per update since.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29

A group's sketches hold hundreds of buckets; rewriting them for every group
an update touched wrote kilobytes per group. From this revision a group is
stored as rows of ``aggregate_parts``: part 0, the base, holds its full
sketches; each update appends a row with the group's totals (count, errors,
n, sum, min and max) and what it changed in the sketches; the engine folds
a few groups per update back into a single base row. The sketches of a
group's measures are joined by ``|``.

The upgrade turns each row of ``aggregates`` into a base row and drops the
table; the downgrade rebuilds it from the newest totals and the summed
sketches.

The sketches are read and written by :class:`_Sketch`, a copy of what this
revision needs of :class:`collectbus.aggregate.sketch.LogSketch` as it was
here (its stored forms, and merging), so that later changes to the engine's
sketch never change what this revision does.
"""

from __future__ import annotations

import base64
import json
import struct
from array import array

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

#: A text of codes this long or longer is counted as soon as it is read.
_PENDING_CHARS = 1 << 20


class _Sketch:
    """Counts per bucket code, in the stored forms of the sketches.

    Read from ``"j:"`` or ``"k:"`` (the base64 of the little-endian codes then
    their counts, as int32 or int64), ``"c:"`` and a JSON array of codes (each
    counted once, counted when the counts are first needed) or the first form
    (the base64 of native int64 pairs ``code, count, ...``); written as
    ``"j:"``, or ``"k:"`` when a count does not fit in an int32.
    """

    __slots__ = ("counts", "texts")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.texts: list[str] = []

    @classmethod
    def from_json(cls, data: str) -> _Sketch:
        new = cls()
        if data[:2] == "c:":
            codes = data[2:]
            if len(codes) > 2:  # not "" nor "[]"
                new.texts.append(codes)
                if len(codes) >= _PENDING_CHARS:
                    new.count_texts()
            return new
        width = {"j:": 4, "k:": 8}.get(data[:2])
        if width is not None:
            raw = base64.b64decode(data[2:])
            n = len(raw) // (2 * width)
            flat = struct.unpack(f"<{2 * n}{'i' if width == 4 else 'q'}", raw)
            new.counts = dict(zip(flat[:n], flat[n:], strict=True))
            return new
        pairs = array("q")
        pairs.frombytes(base64.b64decode(data))
        new.counts = dict(zip(pairs[::2], pairs[1::2], strict=True))
        return new

    def count_texts(self) -> None:
        texts, self.texts = self.texts, []
        if not texts:
            return
        counts = self.counts
        for code in json.loads("[" + ",".join(t[1:-1] for t in texts) + "]"):
            counts[code] = counts.get(code, 0) + 1
        for code in [c for c, n in counts.items() if not n]:
            del counts[code]

    def merge(self, other: _Sketch) -> None:
        """Add the other sketch's counts (its texts are counted later, with these)."""
        self.texts += other.texts
        counts = self.counts
        for code, count in other.counts.items():
            total = counts.get(code, 0) + count
            if total:
                counts[code] = total
            else:
                del counts[code]

    def to_json(self) -> str:
        self.count_texts()
        counts = self.counts
        n = len(counts)
        try:
            packed = struct.pack(f"<{2 * n}i", *counts.keys(), *counts.values())
            kind = "j:"
        except struct.error:  # a count past 2**31
            packed = struct.pack(f"<{2 * n}q", *counts.keys(), *counts.values())
            kind = "k:"
        return kind + base64.b64encode(packed).decode("ascii")


def upgrade() -> None:
    op.create_table(
        "aggregate_parts",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("part", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("measures", sa.Text(), nullable=False),
        sa.Column("sketches", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", "group_key", "part", name="pk_aggregate_parts"),
    )
    conn = op.get_bind()
    bases = []
    for name, key, count, errors, measures in conn.execute(
        sa.text('SELECT name, group_key, "count", errors, measures FROM aggregates')
    ):
        data = json.loads(measures)
        sketches = [str(m.pop("sketch", "") or _Sketch().to_json()) for m in data.values()]
        bases.append(
            {"n": name, "k": key, "c": count, "e": errors, "m": json.dumps(data),
             "s": "|".join(sketches)}
        )  # fmt: skip
    if bases:
        conn.execute(
            sa.text(
                'INSERT INTO aggregate_parts (name, group_key, part, "count", errors, measures,'
                " sketches) VALUES (:n, :k, 0, :c, :e, :m, :s)"
            ),
            bases,
        )
    op.drop_table("aggregates")


def downgrade() -> None:
    op.create_table(
        "aggregates",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("measures", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", "group_key", name="pk_aggregates"),
    )
    conn = op.get_bind()
    groups: dict[tuple[str, str], tuple[int, int, str, list[_Sketch]]] = {}
    for name, key, count, errors, measures, text in conn.execute(
        sa.text(
            'SELECT name, group_key, "count", errors, measures, sketches FROM aggregate_parts'
            " ORDER BY name, group_key, part"
        )
    ):
        parts = [_Sketch.from_json(p) for p in str(text).split("|")] if text else []
        summed = groups[(name, key)][3] if (name, key) in groups else [_Sketch() for _ in parts]
        for mine, part in zip(summed, parts, strict=True):
            mine.merge(part)
        groups[(name, key)] = (count, errors, measures, summed)  # the newest totals
    rows = []
    for (name, key), (count, errors, measures, summed) in groups.items():
        data = json.loads(measures)
        for m, sketch in zip(data.values(), summed, strict=True):
            m["sketch"] = sketch.to_json()
        rows.append({"n": name, "k": key, "c": count, "e": errors, "m": json.dumps(data)})
    if rows:
        conn.execute(
            sa.text(
                'INSERT INTO aggregates (name, group_key, "count", errors, measures)'
                " VALUES (:n, :k, :c, :e, :m)"
            ),
            rows,
        )
    op.drop_table("aggregate_parts")
