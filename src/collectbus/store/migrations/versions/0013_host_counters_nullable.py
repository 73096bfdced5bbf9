"""The host counters may be NULL: a value out of range is stored as NULL.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01

The host parsers replace a number a column cannot hold (a counter past
``2**63 - 1`` or below zero, a NaN or infinite float) by None
(``collectbus.values``), so every value column of the host tables that was
NOT NULL becomes nullable. Downgrading makes them NOT NULL again: a row that
holds such a NULL cannot stay, so it is moved to the quarantine table (one
row each, with its time, host and the reason) before its table is altered.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None

_CPU = "user nice system idle iowait irq softirq steal guest guest_nice"
_STAT = "boot_time_s ctxt_total intr_total softirq_total forks_total procs_running procs_blocked"
_DISK = (
    "major minor read_ios read_merges read_sectors read_ticks_ms write_ios write_merges "
    "write_sectors write_ticks_ms in_flight io_ticks_ms time_in_queue_ms"
)
_NET = (
    "rx_bytes rx_packets rx_errs rx_drop rx_fifo rx_frame rx_compressed rx_multicast "
    "tx_bytes tx_packets tx_errs tx_drop tx_fifo tx_colls tx_carrier tx_compressed"
)
_FLOATS = {"load1", "load5", "load15", "some_avg10", "some_avg60", "some_avg300"}
_FLOATS |= {"uptime_s", "idle_s"}

_COLUMNS = (
    ("host_cpu", _CPU.split()),
    ("host_stat", _STAT.split()),
    ("host_disk", _DISK.split()),
    ("host_net", _NET.split()),
    ("host_load", ["load1", "load5", "load15", "procs_running", "procs_total", "last_pid"]),
    ("host_psi", ["some_avg10", "some_avg60", "some_avg300", "some_total_us"]),
    ("host_uptime", ["uptime_s", "idle_s"]),
)


def _alter(nullable: bool) -> None:
    for table, columns in _COLUMNS:
        with op.batch_alter_table(table) as batch:
            for column in columns:
                if column in _FLOATS:
                    batch.alter_column(column, existing_type=sa.Double(), nullable=nullable)
                else:
                    batch.alter_column(column, existing_type=sa.BigInteger(), nullable=nullable)


def upgrade() -> None:
    _alter(True)


_DOWNGRADE_REASON = (
    "holds a NULL that revision 0012 cannot store; the row was left out by the downgrade"
)


def _quarantine_rows_with_nulls() -> None:
    """Move each row holding a NULL in a column about to be NOT NULL to quarantine."""
    stored_ns = time.time_ns()
    for table, columns in _COLUMNS:
        where = " OR ".join(f"{column} IS NULL" for column in columns)
        joined = " OR ".join(f"t.{column} IS NULL" for column in columns)
        op.execute(
            sa.text(
                "INSERT INTO quarantine "
                "(stored_ns, time_ns, host, source, table_name, field, value, reason) "
                f"SELECT :stored_ns, t.time_ns, h.name, 'host', :table, NULL, NULL, :reason "
                f"FROM {table} t LEFT JOIN hosts h ON h.id = t.host_id WHERE {joined}"
            ).bindparams(stored_ns=stored_ns, table=table, reason=_DOWNGRADE_REASON)
        )
        op.execute(sa.text(f"DELETE FROM {table} WHERE {where}"))


def downgrade() -> None:
    _quarantine_rows_with_nulls()
    _alter(False)
