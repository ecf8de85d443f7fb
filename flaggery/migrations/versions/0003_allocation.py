"""allocation that carries its remainder; ended tests outlive their variants

Adds the per-rollout and per-test-group ``carry`` (the share of new buckets owed across
``increase_buckets`` calls, starting at 0), the ``rollout_growth`` table (which buckets added
while a rollout existed it took, which orders them), and drops the foreign key from A/B-test
group variants to variants so an ended test keeps its record after the variant is removed.

Existing rollouts and tests keep every bucket they hold: no assignment is rewritten. The new
allocation rules apply from each rollout's or test's next change on.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CARRY_COMMENT = "share of new buckets owed (+) or overpaid (-): carried across increase_buckets"
VARIANT_FK = "fk_abtest_group_variants_feature_variant_variants"


def upgrade() -> None:
    for table in ("rollouts", "abtest_groups"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column(
                    "carry", sa.Float(), nullable=False, server_default="0", comment=CARRY_COMMENT
                )
            )
    op.create_table(
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
    with op.batch_alter_table("abtest_group_variants") as batch:
        batch.drop_constraint(VARIANT_FK, type_="foreignkey")


def downgrade() -> None:
    # Re-adding the foreign key needs every ended test's variants to exist again.
    op.execute(
        "DELETE FROM abtest_group_variants WHERE NOT EXISTS (SELECT 1 FROM variants v "
        "WHERE v.feature = abtest_group_variants.feature "
        "AND v.name = abtest_group_variants.variant)"
    )
    with op.batch_alter_table("abtest_group_variants") as batch:
        batch.create_foreign_key(
            VARIANT_FK, "variants", ["feature", "variant"], ["feature", "name"]
        )
    op.drop_table("rollout_growth")
    for table in ("rollouts", "abtest_groups"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("carry")
