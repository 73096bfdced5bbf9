"""aggregate_changes.new_contribution: what a changed row contributes after the change.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29

An aggregate's triggers logged only a changed row's old contribution, and an
update joined the log with the table to learn the new one: a lookup per
changed row in a table of millions. From this revision the triggers log
both: the new contribution for an edit, the JSON ``null`` for a delete.
Rows logged before (NULL here) are still looked up in the table.

The downgrade drops the triggers that write the column and marks the
aggregates they served as built by another definition: the version
downgraded to rebuilds them, with its own triggers, on its next update (and
shows their totals until then).
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("aggregate_changes") as batch:
        batch.add_column(sa.Column("new_contribution", sa.Text(), nullable=True))


PREFIX = "collectbus_agg_"


def _triggered_aggregates(conn: sa.Connection) -> dict[str, list[str]]:
    """Each aggregate with triggers: the statements dropping them."""
    out: dict[str, list[str]] = {}
    if conn.dialect.name == "sqlite":
        rows = conn.execute(
            sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE :p"),
            {"p": PREFIX + "%"},
        )
        for (trigger,) in rows:
            name = trigger[len(PREFIX) :].rsplit("_", 1)[0]  # ..._u, ..._d
            out.setdefault(name, []).append(f'DROP TRIGGER IF EXISTS "{trigger}"')
        return out
    rows = conn.execute(
        sa.text(
            "SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE NOT t.tgisinternal AND t.tgname LIKE :p"
        ),
        {"p": PREFIX + "%"},
    )
    for trigger, table in rows:
        out.setdefault(trigger[len(PREFIX) :], []).extend(
            [
                f'DROP TRIGGER IF EXISTS "{trigger}" ON "{table}"',
                f'DROP FUNCTION IF EXISTS "{trigger}"()',
            ]
        )
    return out


def downgrade() -> None:
    conn = op.get_bind()
    for name, drops in _triggered_aggregates(conn).items():
        for stmt in drops:
            conn.exec_driver_sql(stmt)
        found = conn.execute(sa.text("SELECT spec FROM checkpoints WHERE name = :n"), {"n": name})
        for (spec,) in found.all():
            stale = {**json.loads(spec), "fingerprint": "rebuild"}
            conn.execute(
                sa.text("UPDATE checkpoints SET spec = :s WHERE name = :n"),
                {"s": json.dumps(stale), "n": name},
            )
        conn.execute(sa.text("DELETE FROM aggregate_changes WHERE name = :n"), {"n": name})
    with op.batch_alter_table("aggregate_changes") as batch:
        batch.drop_column("new_contribution")
