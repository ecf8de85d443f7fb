"""growth recorded as one row per rollout and call; the rollout's restore memory

``rollout_growth`` held one row per rollout and new bucket (2,000 rows, each with two
foreign-key checks, for 100 buckets and 20 rollouts). ``rollout_deals`` holds one row per
rollout and ``increase_buckets`` call: the new bucket range and, per bucket in it, whether the
rollout took it ('1') or left it ('0'). Existing rows become one-bucket runs: every rollout
keeps its order, and its buckets are untouched.

``rollouts.restore`` remembers, while the bucket weights stay as they were, the buckets a
rollout held at the proportions it moved away from, so that moving back gives them again.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

DEALS_COMMENT = "per increase_buckets call, which new buckets the rollout took: orders them"
JOINED_COMMENT = "one character per bucket first..last: '1' taken, '0' left"
RESTORE_COMMENT = "JSON: buckets held at proportions moved away from, while the weights hold"


def upgrade() -> None:
    op.create_table(
        "rollout_deals",
        sa.Column("feature", sa.String(length=200), nullable=False),
        sa.Column("first_bucket", sa.Integer(), nullable=False),
        sa.Column("last_bucket", sa.Integer(), nullable=False),
        sa.Column("joined", sa.Text(), nullable=False, comment=JOINED_COMMENT),
        sa.ForeignKeyConstraint(
            ["feature"], ["rollouts.feature"], name=op.f("fk_rollout_deals_feature_rollouts")
        ),
        sa.PrimaryKeyConstraint("feature", "first_bucket", name=op.f("pk_rollout_deals")),
        comment=DEALS_COMMENT,
    )
    op.execute(
        "INSERT INTO rollout_deals (feature, first_bucket, last_bucket, joined) "
        "SELECT feature, bucket_id, bucket_id, CASE WHEN joined THEN '1' ELSE '0' END "
        "FROM rollout_growth"
    )
    op.drop_table("rollout_growth")
    with op.batch_alter_table("rollouts") as batch:
        batch.add_column(sa.Column("restore", sa.Text(), nullable=True, comment=RESTORE_COMMENT))


def downgrade() -> None:
    with op.batch_alter_table("rollouts") as batch:
        batch.drop_column("restore")
    growth = op.create_table(
        "rollout_growth",
        sa.Column("feature", sa.String(length=200), nullable=False),
        sa.Column("bucket_id", sa.Integer(), nullable=False),
        sa.Column("joined", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bucket_id"], ["buckets.id"], name=op.f("fk_rollout_growth_bucket_id_buckets")
        ),
        sa.ForeignKeyConstraint(
            ["feature"], ["rollouts.feature"], name=op.f("fk_rollout_growth_feature_rollouts")
        ),
        sa.PrimaryKeyConstraint("feature", "bucket_id", name=op.f("pk_rollout_growth")),
        comment="buckets added while the rollout existed, and whether it took them: orders them",
    )
    runs = op.get_bind().execute(sa.text("SELECT feature, first_bucket, joined FROM rollout_deals"))
    rows = [
        {"feature": feature, "bucket_id": first + offset, "joined": flag == "1"}
        for feature, first, joined in runs
        for offset, flag in enumerate(joined)
    ]
    if rows:
        op.bulk_insert(growth, rows)
    op.drop_table("rollout_deals")
