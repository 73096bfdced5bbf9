"""collection_log.details: what each collection noted (a JSON object).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

Nullable: collections logged before this revision, and collections that
noted nothing, have none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("collection_log") as batch:
        batch.add_column(sa.Column("details", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("collection_log") as batch:
        batch.drop_column("details")
