"""scheduled changes and release plans (progressive delivery)

Revision ID: 0012
Revises: 0011

Two new tables, nothing changed in the others: `schedule_steps` (one row per step of a named
schedule: its instant, operation and arguments, and what became of it) and `release_plans`
(one plan per feature: its variant, its steps and where it stands). Both are written inside
the ordinary write transaction that applies or changes them, so a step and the write it makes
commit together or not at all.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedule_steps",
        sa.Column("schedule", sa.String(length=200), nullable=False),
        sa.Column("step", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column(
            "due_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="UTC instant the step is due",
        ),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("arguments", sa.Text(), nullable=False, comment="JSON object"),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            comment="pending, applied, cancelled or failed",
        ),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("applied_revision", sa.BigInteger(), nullable=True),
        sa.Column("late_seconds", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("schedule", "step", name=op.f("pk_schedule_steps")),
        comment="Steps of scheduled changes, applied by an admin server when due.",
    )
    op.create_index(op.f("ix_schedule_steps_status_due_at"), "schedule_steps", ["status", "due_at"])
    op.create_table(
        "release_plans",
        sa.Column("feature", sa.String(length=200), nullable=False),
        sa.Column("variant", sa.String(length=200), nullable=False),
        sa.Column("steps", sa.Text(), nullable=False, comment="JSON [[proportion, hold s|null]]"),
        sa.Column("status", sa.String(length=16), nullable=False, comment="active, paused or done"),
        sa.Column(
            "step", sa.Integer(), nullable=False, comment="index of the current step; -1: none"
        ),
        sa.Column(
            "next_at", sa.DateTime(timezone=True), nullable=True, comment="UTC; NULL unless active"
        ),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False, comment="the last thing done, in words"),
        sa.PrimaryKeyConstraint("feature", name=op.f("pk_release_plans")),
        comment="Release plans: a rollout ramped step by step by the admin server.",
    )


def downgrade() -> None:
    op.drop_table("release_plans")
    op.drop_index(op.f("ix_schedule_steps_status_due_at"), table_name="schedule_steps")
    op.drop_table("schedule_steps")
