"""aggregate_parts clustered by its key in SQLite (``WITHOUT ROWID``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29

An update appends one row per group it touched and, now and then, folds a
group: deletes its rows and writes one base row. In a rowid table a group's
rows lie wherever they were appended, one page each, and the key lives in a
second b-tree; stored in key order, a group's rows share a few pages and each
insert changes one b-tree, not two. PostgreSQL keeps its heap and index: the
revision changes nothing there.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def _rebuild(with_rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "aggregate_parts", recreate="always", table_kwargs={"sqlite_with_rowid": with_rowid}
    ):
        pass


def upgrade() -> None:
    _rebuild(with_rowid=False)


def downgrade() -> None:
    _rebuild(with_rowid=True)
