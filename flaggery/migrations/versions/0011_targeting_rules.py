"""targeting rules: a group's rule, a rollout's and an A/B test's audience

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 14:10:00.000000

Three nullable columns: existing groups have no rule (members only) and existing rollouts and
tests no audience (every unit in their buckets), so the upgrade changes no answer. The audience
columns have no foreign key (adding one on SQLite rebuilds the table, which the tables that
reference rollouts and abtests forbid): the store checks the group on every write.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_NAME_LENGTH = 200


def upgrade() -> None:
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "rule",
                sa.Text(),
                nullable=True,
                comment="JSON: the targeting rule (a list of constraint sets); NULL: members only",
            )
        )
    for table, comment in (
        ("rollouts", "the group the rollout's variant goes to; NULL: every unit in its buckets"),
        ("abtests", "the group the test's variants go to; NULL: every unit in its buckets"),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("audience", sa.String(_NAME_LENGTH), nullable=True, comment=comment)
            )


def downgrade() -> None:
    for table in ("abtests", "rollouts"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("audience")
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.drop_column("rule")
