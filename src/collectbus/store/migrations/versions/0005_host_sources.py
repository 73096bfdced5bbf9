"""Host PSI, uptime and cgroup wide tables, and the host inventory.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

A frozen copy of the ``host_psi``, ``host_uptime``, ``host_cgroup`` and
``host_inventory`` definitions of ``collectbus.store.schema`` at this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_PSI = (
    ("resource", sa.Text, False),
    ("some_avg10", sa.Double, False),
    ("some_avg60", sa.Double, False),
    ("some_avg300", sa.Double, False),
    ("some_total_us", sa.BigInteger, False),
    ("full_avg10", sa.Double, True),
    ("full_avg60", sa.Double, True),
    ("full_avg300", sa.Double, True),
    ("full_total_us", sa.BigInteger, True),
)
_UPTIME = (("uptime_s", sa.Double, False), ("idle_s", sa.Double, False))
_CGROUP_COUNTERS = [
    "cpu_usage_usec",
    "cpu_user_usec",
    "cpu_system_usec",
    "cpu_nr_periods",
    "cpu_nr_throttled",
    "cpu_throttled_usec",
    "cpu_max_quota_us",
    "cpu_max_period_us",
    "memory_current_bytes",
    "memory_max_bytes",
    "memory_anon_bytes",
    "memory_file_bytes",
    "memory_kernel_bytes",
    "memory_shmem_bytes",
    "memory_pgfault",
    "memory_pgmajfault",
    "io_rbytes",
    "io_wbytes",
    "io_rios",
    "io_wios",
    "pids_current",
]
_CGROUP = (("cgroup", sa.Text, False), *((c, sa.BigInteger, True) for c in _CGROUP_COUNTERS))

_WIDE = (("host_psi", _PSI), ("host_uptime", _UPTIME), ("host_cgroup", _CGROUP))


def upgrade() -> None:
    for table, columns in _WIDE:
        op.create_table(
            table,
            sa.Column("host_id", sa.Integer(), nullable=False),
            sa.Column("time_ns", sa.BigInteger(), nullable=False),
            *(sa.Column(name, kind(), nullable=nullable) for name, kind, nullable in columns),
            sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=f"fk_{table}_host_id_hosts"),
        )
        op.create_index(f"ix_{table}_time_ns", table, ["time_ns"])
    op.create_table(
        "host_inventory",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("time_ns", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_host_inventory"),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name="fk_host_inventory_host_id_hosts"),
    )
    op.create_index("ix_host_inventory_host_id_time_ns", "host_inventory", ["host_id", "time_ns"])


def downgrade() -> None:
    op.drop_table("host_inventory")
    for table, _ in reversed(_WIDE):
        op.drop_table(table)
