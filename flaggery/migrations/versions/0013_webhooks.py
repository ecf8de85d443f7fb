"""webhook subscriptions, each with its cursor in the change log

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_NAME_LENGTH = 200


def _filter(name: str, length: int = _NAME_LENGTH) -> sa.Column[str]:
    return sa.Column(name, sa.String(length=length), nullable=True, comment="filter; NULL: any")


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("name", sa.String(length=_NAME_LENGTH), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column(
            "secret",
            sa.Text(),
            nullable=False,
            comment="HMAC-SHA256 key of the signature header",
        ),
        _filter("feature"),
        _filter("group"),
        _filter("test"),
        _filter("operation", 64),
        sa.Column(
            "delivered",
            sa.BigInteger(),
            nullable=False,
            comment="cursor: the last revision handled",
        ),
        sa.Column(
            "failing_since",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="first failure of this streak",
        ),
        sa.Column("failing", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "leased_by",
            sa.String(length=32),
            nullable=True,
            comment="the admin process delivering",
        ),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_webhooks")),
        comment="Webhook subscriptions (flaggery.hooks): delivered from the change log.",
    )


def downgrade() -> None:
    op.drop_table("webhooks")
