"""exposure counters and exposed units (experiment health, POST /v1/exposures)

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _counter(name: str, comment: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=False, comment=comment)


def upgrade() -> None:
    op.create_table(
        "exposure_counts",
        sa.Column("test", sa.String(length=200), nullable=False),
        sa.Column(
            "test_group",
            sa.String(length=200),
            nullable=False,
            comment="the group the client reported seeing",
        ),
        sa.Column("hashed", sa.Boolean(), nullable=False, comment="true: hashed targeting keys"),
        sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
        _counter("first", "first exposures of a unit in the test"),
        _counter("repeats", "exposures of units seen before"),
        _counter("misassigned", "reported group != assigned"),
        _counter("early", "exposures timed before the start"),
        _counter("late", "exposures timed after the end"),
        sa.PrimaryKeyConstraint(
            "test", "test_group", "hashed", "bucket", name=op.f("pk_exposure_counts")
        ),
        comment="Exposure counters (POST /v1/exposures), added to in one upsert per batch.",
    )
    op.create_table(
        "exposed_units",
        sa.Column("test", sa.String(length=200), nullable=False),
        sa.Column(
            "unit", sa.String(length=300), nullable=False, comment="'s:<subject id>' or 'k:<key>'"
        ),
        sa.PrimaryKeyConstraint("test", "unit", name=op.f("pk_exposed_units")),
        comment="Every unit exposed to a test during its window: first exposures counted exactly.",
    )


def downgrade() -> None:
    op.drop_table("exposed_units")
    op.drop_table("exposure_counts")
