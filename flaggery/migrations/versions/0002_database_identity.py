"""database identity and change ids

Each database gets a random identity, so a replica that finds another database behind the same
URL reloads fully. Each write gets a random change id, kept with its change-log row and as the
latest in flaggery_state, so a replica notices when the history it applied was rewritten (a
restored backup) even where the revision number alone looks fine.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 20:40:00.000000
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flaggery_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "database_id",
                sa.String(length=32),
                nullable=True,
                comment="Random identity given at migration: another database, another id.",
            )
        )
        batch_op.add_column(
            sa.Column(
                "change_id",
                sa.String(length=32),
                nullable=True,
                comment="Random id of the latest write (change_log.change_id of revision).",
            )
        )
    with op.batch_alter_table("change_log", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "change_id",
                sa.String(length=32),
                nullable=True,
                comment="Random id of this write; NULL for writes made before revision 0002.",
            )
        )
    state = sa.table("flaggery_state", sa.column("database_id", sa.String))
    op.execute(state.update().values(database_id=uuid.uuid4().hex))


def downgrade() -> None:
    with op.batch_alter_table("change_log", schema=None) as batch_op:
        batch_op.drop_column("change_id")
    with op.batch_alter_table("flaggery_state", schema=None) as batch_op:
        batch_op.drop_column("change_id")
        batch_op.drop_column("database_id")
