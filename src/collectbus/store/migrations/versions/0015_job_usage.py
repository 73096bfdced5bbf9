"""job_usage: what each batch job used on each node, per tick.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

One row per job, host and tick from the ``jobusage`` collector: CPU seconds,
memory now and at its peak, bytes read and written, processes, and whether
they came from the job's cgroup or its processes. Downgrading drops the table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision: str | None = "0014"
branch_labels: str | None = None
depends_on: str | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "job_usage",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("cluster", sa.Text(), nullable=False),
        sa.Column("job_id", sa.Text(), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("time_ns", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("cpu_seconds", sa.Double(), nullable=True),
        sa.Column("mem_bytes", sa.BigInteger(), nullable=True),
        sa.Column("mem_peak_bytes", sa.BigInteger(), nullable=True),
        sa.Column("read_bytes", sa.BigInteger(), nullable=True),
        sa.Column("write_bytes", sa.BigInteger(), nullable=True),
        sa.Column("processes", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_job_usage"),
    )
    op.create_index(
        "ix_job_usage_cluster_job_id_time_ns", "job_usage", ["cluster", "job_id", "time_ns"]
    )
    op.create_index("ix_job_usage_time_ns", "job_usage", ["time_ns"])


def downgrade() -> None:
    op.drop_table("job_usage")
