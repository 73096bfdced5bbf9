"""reservations and reservation_history: advance reservations and their changes.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

One row per reservation (PBS ``pbs_rstat -f``, Slurm ``scontrol show
reservation``), keyed by cluster, id and creation time, with its current or
final state; one ``reservation_history`` row per change of a tracked field.
Downgrading drops both tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reservations",
        sa.Column("cluster", sa.Text(), nullable=False),
        sa.Column("resv_id", sa.Text(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("scheduler", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("native_state", sa.Text(), nullable=False),
        sa.Column("substate", sa.Text(), nullable=True),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("queue", sa.Text(), nullable=True),
        sa.Column("users", sa.Text(), nullable=True),
        sa.Column("nodes", sa.Text(), nullable=True),
        sa.Column("nodes_requested", sa.BigInteger(), nullable=True),
        sa.Column("cpus_requested", sa.BigInteger(), nullable=True),
        sa.Column("start_ns", sa.BigInteger(), nullable=True),
        sa.Column("end_ns", sa.BigInteger(), nullable=True),
        sa.Column("duration_seconds", sa.BigInteger(), nullable=True),
        sa.Column("modified_ns", sa.BigInteger(), nullable=True),
        sa.Column("first_seen_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_ns", sa.BigInteger(), nullable=False),
        sa.Column("raw_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("cluster", "resv_id", "created_ns", name="pk_reservations"),
    )
    op.create_index("ix_reservations_last_seen_ns", "reservations", ["last_seen_ns"])
    op.create_table(
        "reservation_history",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("cluster", sa.Text(), nullable=False),
        sa.Column("resv_id", sa.Text(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("observed_ns", sa.BigInteger(), nullable=False),
        sa.Column("field", sa.Text(), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_reservation_history"),
    )
    op.create_index(
        "ix_reservation_history_resv_id_cluster_created_ns",
        "reservation_history",
        ["resv_id", "cluster", "created_ns"],
    )
    op.create_index("ix_reservation_history_observed_ns", "reservation_history", ["observed_ns"])


def downgrade() -> None:
    op.drop_table("reservation_history")
    op.drop_table("reservations")
