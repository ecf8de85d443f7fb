"""bucket splits: growths that split every bucket, which hashed targeting keys follow

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 21:00:00.000000

One new table, empty: a database migrated earlier hashes every key into the same bucket as
before until its next growth by a whole multiple (flaggery.engine.targeting.bucket_index).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bucket_splits",
        sa.Column(
            "start",
            sa.Integer(),
            autoincrement=False,
            nullable=False,
            comment="the bucket count before the growth",
        ),
        sa.Column(
            "multiple",
            sa.Integer(),
            nullable=False,
            comment="each bucket became this many: itself and multiple - 1 children",
        ),
        sa.PrimaryKeyConstraint("start", name=op.f("pk_bucket_splits")),
        comment="growths that split every bucket: targeting keys follow them; none before 0016",
    )


def downgrade() -> None:
    op.drop_table("bucket_splits")
