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
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from collectbus.aggregate.sketch import LogSketch

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


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
        sketches = [str(m.pop("sketch", "") or LogSketch().to_json()) for m in data.values()]
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
    groups: dict[tuple[str, str], tuple[int, int, str, list[LogSketch]]] = {}
    for name, key, count, errors, measures, text in conn.execute(
        sa.text(
            'SELECT name, group_key, "count", errors, measures, sketches FROM aggregate_parts'
            " ORDER BY name, group_key, part"
        )
    ):
        parts = [LogSketch.from_json(p) for p in str(text).split("|")] if text else []
        summed = groups[(name, key)][3] if (name, key) in groups else [LogSketch() for _ in parts]
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
