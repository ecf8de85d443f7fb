"""kill switch and removed subjects' buckets

``features.killed``: the kill switch as a state of the feature, applied as resolution's last
layer, so turning it off restores the default, rollout and overrides exactly (until now the
switch rewrote the default and the rollout, and nothing restored them).

``removed_subjects``: the bucket of each removed subject, so the same id registered again lands
in the same bucket (and the same A/B test arm) within the stated retention.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 14:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (SQLite supports it with a constant default): a batch copy of
    # ``features`` would have to drop a table that variants and rollouts reference.
    op.add_column(
        "features", sa.Column("killed", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.create_table(
        "removed_subjects",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("bucket_id", sa.Integer(), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bucket_id"], ["buckets.id"], name=op.f("fk_removed_subjects_bucket_id_buckets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_removed_subjects")),
    )
    with op.batch_alter_table("removed_subjects", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_removed_subjects_removed_at"), ["removed_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("removed_subjects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_removed_subjects_removed_at"))
    op.drop_table("removed_subjects")
    op.drop_column("features", "killed")  # SQLite 3.35+ drops a column in place
