"""assignment counts: answers the flags routes served per A/B test group

Revision ID: 0018
Revises: 0017

What the server served, kept apart from what clients report (``exposure_counts``): one row
per (test, group), added to at each exposure flush (flaggery.store.exposures). Starts empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assignment_counts",
        sa.Column("test", sa.String(length=200), nullable=False),
        sa.Column(
            "test_group",
            sa.String(length=200),
            nullable=False,
            comment="the group whose bucket the answer came from",
        ),
        sa.Column(
            "served", sa.BigInteger(), nullable=False, comment="flags answers served while live"
        ),
        sa.PrimaryKeyConstraint("test", "test_group", name=op.f("pk_assignment_counts")),
        comment="Assignments: answers the flags routes served per test group, added to per flush.",
    )


def downgrade() -> None:
    op.drop_table("assignment_counts")
