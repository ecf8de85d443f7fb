"""targeting-key salt

Each database gets 16 random bytes (hex) that targeting keys are hashed with
(flaggery.engine.targeting): every process, replica, edge and remote client of one database
hashes a key into the same bucket, and two databases hash it apart. Given once here, never
changed, kept by backups (it is a column like any other).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 14:10:00.000000
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flaggery_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "key_salt",
                sa.String(length=32),
                nullable=True,
                comment="Random 16-byte salt (hex) targeting keys are hashed with; never changed.",
            )
        )
    state = sa.table("flaggery_state", sa.column("key_salt", sa.String))
    op.execute(state.update().values(key_salt=secrets.token_hex(16)))


def downgrade() -> None:
    with op.batch_alter_table("flaggery_state", schema=None) as batch_op:
        batch_op.drop_column("key_salt")
