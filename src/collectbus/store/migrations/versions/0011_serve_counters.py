"""serve_counters: what ``collectbus serve`` has exported, so that a restart continues it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30

A frozen copy of ``collectbus.store.schema.serve_counters`` at this revision.
Per server name, metric source and series: the series' counters as JSON
(``collectbus.serve.counting.saved``). The downgrade drops the table: a server of the
older version starts its counters again from the rows present.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "serve_counters",
        sa.Column("instance", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("series", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("instance", "source", "series", name="pk_serve_counters"),
    )


def downgrade() -> None:
    op.drop_table("serve_counters")
