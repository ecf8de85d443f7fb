"""variant values: a variant may carry a JSON value for OpenFeature clients

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 20:30:00.000000

A nullable column: existing variants keep NULL, which means "the value is the name", so the
upgrade changes nothing any client sees.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("variants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "value",
                sa.Text(),
                nullable=True,
                comment="JSON; NULL means the value is the name",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("variants", schema=None) as batch_op:
        batch_op.drop_column("value")
