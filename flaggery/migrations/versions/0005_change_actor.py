"""change actor

Every change-log row records who made the write: the token's name over REST, the ``actor``
given to AsyncFlaggery/Flaggery in Python. Rows written before this revision keep NULL.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 21:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("change_log", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "actor",
                sa.String(length=200),
                nullable=True,
                comment="Token name or Python actor of this write; NULL for writes before 0005.",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("change_log", schema=None) as batch_op:
        batch_op.drop_column("actor")
