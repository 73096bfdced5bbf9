"""aggregate_blocks: a read-only source's closed rows, checked per block of ids.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

An aggregate over another database's table records, per block of ids, the
count, sum of ids and sum of a check term of its closed rows; every update
compares some blocks with the source, so that a deleted, re-used or edited
closed row is found and repaired. Such an aggregate's ledger may now hold
open rows of any age (``open_when``/``open_column``), and its checkpoint
state the ledger's floor and the sweep.

The downgrade drops the table and marks the aggregates over another
database as built by another definition: the version downgraded to
rebuilds them (and their ledger) on its next update.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "aggregate_blocks",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("block", sa.BigInteger(), primary_key=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("id_sum", sa.BigInteger(), nullable=False),
        sa.Column("term_sum", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    conn = op.get_bind()
    found = conn.execute(sa.text("SELECT name, spec, state FROM checkpoints")).all()
    for name, spec, state in found:
        if "sweep" not in json.loads(state):
            continue  # a table of the store: unchanged
        stale = {**json.loads(spec), "fingerprint": "rebuild"}
        conn.execute(
            sa.text("UPDATE checkpoints SET spec = :s WHERE name = :n"),
            {"s": json.dumps(stale), "n": name},
        )
        conn.execute(sa.text("DELETE FROM aggregate_ledger WHERE name = :n"), {"n": name})
    op.drop_table("aggregate_blocks")
