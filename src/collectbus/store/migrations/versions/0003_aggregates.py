"""Incremental aggregates: checkpoints, totals, a change log and a row ledger.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

A frozen copy of ``checkpoints``, ``aggregates``, ``aggregate_changes`` and
``aggregate_ledger`` in ``collectbus.store.schema`` at this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.Column("mismatches", sa.BigInteger(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.Column("refreshed_ns", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_checkpoints"),
    )
    op.create_table(
        "aggregates",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("measures", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", "group_key", name="pk_aggregates"),
    )
    op.create_table(
        "aggregate_changes",
        sa.Column("seq", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.Column("old", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_aggregate_changes"),
    )
    op.create_index("ix_aggregate_changes_name_seq", "aggregate_changes", ["name", "seq"])
    op.create_table(
        "aggregate_ledger",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.Column("contribution", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", "row_id", name="pk_aggregate_ledger"),
    )


def downgrade() -> None:
    op.drop_table("aggregate_ledger")
    op.drop_table("aggregate_changes")
    op.drop_table("aggregates")
    op.drop_table("checkpoints")
