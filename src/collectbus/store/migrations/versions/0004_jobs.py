"""Scheduler tables: jobs, job_history, node_snapshots, queue_snapshots, system_snapshots.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

A frozen copy of the scheduler tables of ``collectbus.store.schema`` at this
revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _big(name: str, nullable: bool = True) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def _text(name: str, nullable: bool = True) -> sa.Column[str]:
    return sa.Column(name, sa.Text(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "jobs",
        _text("cluster", False),
        _text("job_id", False),
        _big("submit_ns", False),
        _text("scheduler", False),
        _text("state", False),
        _text("native_state", False),
        _text("substate"),
        _text("name"),
        _text("username"),
        _text("account"),
        _text("queue"),
        _big("priority"),
        _text("array_parent"),
        _text("exec_hosts"),
        _text("exec_vnode"),
        _big("nodes_requested"),
        _big("cpus_requested"),
        _big("gpus_requested"),
        _big("mem_requested_bytes"),
        _big("walltime_requested_seconds"),
        _big("walltime_used_seconds"),
        _big("cpu_used_seconds"),
        _big("mem_used_bytes"),
        _big("eligible_ns"),
        _big("eligible_seconds"),
        _big("start_ns"),
        _big("end_ns"),
        _big("exit_status"),
        _big("exit_signal"),
        _text("comment"),
        _big("first_seen_ns", False),
        _big("last_seen_ns", False),
        _text("raw_json", False),
        sa.PrimaryKeyConstraint("cluster", "job_id", "submit_ns", name="pk_jobs"),
    )
    op.create_index("ix_jobs_submit_ns", "jobs", ["submit_ns"])
    op.create_index("ix_jobs_last_seen_ns", "jobs", ["last_seen_ns"])
    op.create_index("ix_jobs_job_id", "jobs", ["job_id"])

    op.create_table(
        "job_history",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        _text("cluster", False),
        _text("job_id", False),
        _big("submit_ns", False),
        _big("observed_ns", False),
        _text("field", False),
        _text("old_value"),
        _text("new_value"),
        _text("note"),
        sa.PrimaryKeyConstraint("id", name="pk_job_history"),
    )
    op.create_index(
        "ix_job_history_job_id_cluster_submit_ns", "job_history", ["job_id", "cluster", "submit_ns"]
    )
    op.create_index("ix_job_history_observed_ns", "job_history", ["observed_ns"])

    op.create_table(
        "node_snapshots",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        _text("cluster", False),
        _text("scheduler", False),
        _text("node", False),
        _big("observed_ns", False),
        _text("state", False),
        _text("native_state", False),
        _text("partitions"),
        _big("cpus_total"),
        _big("cpus_allocated"),
        _big("gpus_total"),
        _big("gpus_allocated"),
        _big("mem_total_bytes"),
        _big("mem_allocated_bytes"),
        _text("jobs"),
        _text("comment"),
        _text("raw_json", False),
        sa.PrimaryKeyConstraint("id", name="pk_node_snapshots"),
    )
    op.create_index("ix_node_snapshots_observed_ns", "node_snapshots", ["observed_ns"])
    op.create_index(
        "ix_node_snapshots_cluster_node_observed_ns",
        "node_snapshots",
        ["cluster", "node", "observed_ns"],
    )

    op.create_table(
        "queue_snapshots",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        _text("cluster", False),
        _text("scheduler", False),
        _text("queue", False),
        _big("observed_ns", False),
        sa.Column("enabled", sa.Boolean(), nullable=True),
        sa.Column("started", sa.Boolean(), nullable=True),
        _big("jobs_total"),
        _big("jobs_queued"),
        _big("jobs_running"),
        _big("jobs_held"),
        _text("state_counts", False),
        _text("raw_json", False),
        sa.PrimaryKeyConstraint("id", name="pk_queue_snapshots"),
    )
    op.create_index("ix_queue_snapshots_observed_ns", "queue_snapshots", ["observed_ns"])

    op.create_table(
        "system_snapshots",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        _text("cluster", False),
        _text("scheduler", False),
        _text("server", False),
        _big("observed_ns", False),
        _text("server_state"),
        _big("jobs_total"),
        _text("state_counts", False),
        _text("raw_json", False),
        sa.PrimaryKeyConstraint("id", name="pk_system_snapshots"),
    )
    op.create_index("ix_system_snapshots_observed_ns", "system_snapshots", ["observed_ns"])


def downgrade() -> None:
    for table in ("system_snapshots", "queue_snapshots", "node_snapshots", "job_history", "jobs"):
        op.drop_table(table)
