"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 06:20:24.208633
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "abtests",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_abtests")),
    )
    op.create_table(
        "buckets",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("weight", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_buckets")),
    )
    with op.batch_alter_table("buckets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_buckets_weight_id"), ["weight", "id"], unique=False)

    op.create_table(
        "change_log",
        sa.Column("revision", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column(
            "payload",
            sa.Text(),
            nullable=False,
            comment="JSON list of facts (flaggery.engine.model)",
        ),
        sa.PrimaryKeyConstraint("revision", name=op.f("pk_change_log")),
    )
    op.create_table(
        "features",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("default_variant", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_features")),
    )
    op.create_table(
        "flaggery_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flaggery_state")),
        comment="One row. Every write increments revision first, which also serializes writers.",
    )
    op.create_table(
        "groups",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_groups")),
    )
    op.create_table(
        "abtest_groups",
        sa.Column("test", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("proportion", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["test"], ["abtests.name"], name=op.f("fk_abtest_groups_test_abtests")
        ),
        sa.PrimaryKeyConstraint("test", "name", name=op.f("pk_abtest_groups")),
    )
    op.create_table(
        "subjects",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("weight", sa.BigInteger(), nullable=False),
        sa.Column("bucket_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bucket_id"], ["buckets.id"], name=op.f("fk_subjects_bucket_id_buckets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subjects")),
    )
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subjects_bucket_id"), ["bucket_id"], unique=False)

    op.create_table(
        "variants",
        sa.Column("feature", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("disabling", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["feature"], ["features.name"], name=op.f("fk_variants_feature_features")
        ),
        sa.PrimaryKeyConstraint("feature", "name", name=op.f("pk_variants")),
    )
    op.create_table(
        "abtest_group_buckets",
        sa.Column("test", sa.String(length=200), nullable=False),
        sa.Column("bucket_id", sa.Integer(), nullable=False),
        sa.Column("group", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["bucket_id"], ["buckets.id"], name=op.f("fk_abtest_group_buckets_bucket_id_buckets")
        ),
        sa.ForeignKeyConstraint(
            ["test", "group"],
            ["abtest_groups.test", "abtest_groups.name"],
            name=op.f("fk_abtest_group_buckets_test_group_abtest_groups"),
        ),
        sa.PrimaryKeyConstraint("test", "bucket_id", name=op.f("pk_abtest_group_buckets")),
    )
    op.create_table(
        "abtest_group_variants",
        sa.Column("test", sa.String(length=200), nullable=False),
        sa.Column("group", sa.String(length=200), nullable=False),
        sa.Column("feature", sa.String(length=200), nullable=False),
        sa.Column("variant", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["feature", "variant"],
            ["variants.feature", "variants.name"],
            name=op.f("fk_abtest_group_variants_feature_variant_variants"),
        ),
        sa.ForeignKeyConstraint(
            ["test", "group"],
            ["abtest_groups.test", "abtest_groups.name"],
            name=op.f("fk_abtest_group_variants_test_group_abtest_groups"),
        ),
        sa.PrimaryKeyConstraint("test", "group", "feature", name=op.f("pk_abtest_group_variants")),
    )
    op.create_table(
        "group_members",
        sa.Column("group", sa.String(length=200), nullable=False),
        sa.Column("subject_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "joined",
            sa.BigInteger(),
            nullable=False,
            comment="revision of the join: orders overrides",
        ),
        sa.ForeignKeyConstraint(
            ["group"], ["groups.name"], name=op.f("fk_group_members_group_groups")
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name=op.f("fk_group_members_subject_id_subjects")
        ),
        sa.PrimaryKeyConstraint("group", "subject_id", name=op.f("pk_group_members")),
    )
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_group_members_subject_id_joined"), ["subject_id", "joined"], unique=False
        )

    op.create_table(
        "group_overrides",
        sa.Column("group", sa.String(length=200), nullable=False),
        sa.Column("feature", sa.String(length=200), nullable=False),
        sa.Column("variant", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["feature", "variant"],
            ["variants.feature", "variants.name"],
            name=op.f("fk_group_overrides_feature_variant_variants"),
        ),
        sa.ForeignKeyConstraint(
            ["group"], ["groups.name"], name=op.f("fk_group_overrides_group_groups")
        ),
        sa.PrimaryKeyConstraint("group", "feature", name=op.f("pk_group_overrides")),
    )
    op.create_table(
        "rollouts",
        sa.Column("feature", sa.String(length=200), nullable=False),
        sa.Column("variant", sa.String(length=200), nullable=False),
        sa.Column("proportion", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["feature", "variant"],
            ["variants.feature", "variants.name"],
            name=op.f("fk_rollouts_feature_variant_variants"),
        ),
        sa.PrimaryKeyConstraint("feature", name=op.f("pk_rollouts")),
    )
    op.create_table(
        "rollout_buckets",
        sa.Column("feature", sa.String(length=200), nullable=False),
        sa.Column("bucket_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bucket_id"], ["buckets.id"], name=op.f("fk_rollout_buckets_bucket_id_buckets")
        ),
        sa.ForeignKeyConstraint(
            ["feature"], ["rollouts.feature"], name=op.f("fk_rollout_buckets_feature_rollouts")
        ),
        sa.PrimaryKeyConstraint("feature", "bucket_id", name=op.f("pk_rollout_buckets")),
    )
    state = sa.table(
        "flaggery_state", sa.column("id", sa.Integer), sa.column("revision", sa.BigInteger)
    )
    op.bulk_insert(state, [{"id": 1, "revision": 0}])


def downgrade() -> None:
    op.drop_table("rollout_buckets")
    op.drop_table("rollouts")
    op.drop_table("group_overrides")
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_members_subject_id_joined"))

    op.drop_table("group_members")
    op.drop_table("abtest_group_variants")
    op.drop_table("abtest_group_buckets")
    op.drop_table("variants")
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subjects_bucket_id"))

    op.drop_table("subjects")
    op.drop_table("abtest_groups")
    op.drop_table("groups")
    op.drop_table("flaggery_state")
    op.drop_table("features")
    op.drop_table("change_log")
    with op.batch_alter_table("buckets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_buckets_weight_id"))

    op.drop_table("buckets")
    op.drop_table("abtests")
