"""quarantine: values and rows the database refused, kept with the reason.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

A value that no column can hold (an integer past 64 bits, a NaN, text that
is not valid UTF-8) or a row the database refuses is left out of its
collection, whose other rows are stored, and kept here as text with why.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "quarantine",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("stored_ns", sa.BigInteger(), nullable=False),
        sa.Column("time_ns", sa.BigInteger(), nullable=True),
        sa.Column("host", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("field", sa.Text(), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quarantine"),
    )


def downgrade() -> None:
    op.drop_table("quarantine")
