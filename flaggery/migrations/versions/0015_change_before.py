"""change log before: what each write changed, as it stood before the write

Revision ID: 0015
Revises: 0011
Create Date: 2026-12-07 17:00:00.000000

One nullable column. A change-log row's payload holds the new state of what the write changed;
``before`` holds the same entities as they stood before it (JSON list of facts, the entity
absent: a fact with None), so History says "10% -> 50%" and a revert knows what to restore.
Rows written before this migration have NULL: History shows their new state only, and they
cannot be reverted.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("change_log", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "before",
                sa.Text(),
                nullable=True,
                comment="JSON list of facts: what the write changed, before it; NULL before 0015",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("change_log", schema=None) as batch_op:
        batch_op.drop_column("before")
