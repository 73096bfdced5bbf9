"""aggregate_sketches: each group's sketches as a base row plus appended deltas.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29

A group's sketch holds hundreds of buckets; an update that rewrote every
touched group's sketches wrote kilobytes per group. From this revision
``aggregates.measures`` keeps n, sum, min and max, and the sketches live in
``aggregate_sketches``: part 0 is the base, and each update appends a small
delta row that is folded into the base later. The sketches of a group's
measures are joined by ``|``. The upgrade moves each
stored sketch into a base row; the downgrade folds the rows back.
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
        "aggregate_sketches",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("part", sa.BigInteger(), nullable=False),
        sa.Column("sketches", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", "group_key", "part", name="pk_aggregate_sketches"),
    )
    conn = op.get_bind()
    bases = []
    for name, key, measures in conn.execute(
        sa.text("SELECT name, group_key, measures FROM aggregates")
    ):
        data = json.loads(measures)
        if not data:
            continue
        sketches = [str(m.pop("sketch", "") or LogSketch().to_json()) for m in data.values()]
        bases.append({"n": name, "k": key, "s": "|".join(sketches), "m": json.dumps(data)})
    if bases:
        conn.execute(
            sa.text("UPDATE aggregates SET measures = :m WHERE name = :n AND group_key = :k"),
            bases,
        )
        conn.execute(
            sa.text(
                "INSERT INTO aggregate_sketches (name, group_key, part, sketches)"
                " VALUES (:n, :k, 0, :s)"
            ),
            bases,
        )


def downgrade() -> None:
    conn = op.get_bind()
    summed: dict[tuple[str, str], list[LogSketch]] = {}
    for name, key, text in conn.execute(
        sa.text("SELECT name, group_key, sketches FROM aggregate_sketches")
    ):
        parts = [LogSketch.from_json(p) for p in str(text).split("|")]
        have = summed.setdefault((name, key), [LogSketch() for _ in parts])
        for mine, part in zip(have, parts, strict=True):
            mine.merge(part)
    rows = []
    for name, key, measures in conn.execute(
        sa.text("SELECT name, group_key, measures FROM aggregates")
    ):
        data = json.loads(measures)
        sketches = summed.get((name, key), [LogSketch() for _ in data])
        for m, sketch in zip(data.values(), sketches, strict=True):
            m["sketch"] = sketch.to_json()
        rows.append({"n": name, "k": key, "m": json.dumps(data)})
    if rows:
        conn.execute(
            sa.text("UPDATE aggregates SET measures = :m WHERE name = :n AND group_key = :k"),
            rows,
        )
    op.drop_table("aggregate_sketches")
