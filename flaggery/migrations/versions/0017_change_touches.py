"""change touches: what each change-log row touches, indexed, for filtered history

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 21:00:00.000000

A History filter (feature, group, A/B test, subject) decoded up to 10,000 change-log rows in
Python per page; with one row per (kind, name, revision) it is one indexed query. The rows of
the retained log are filled here by the code that writes them (flaggery.store.change_index),
so old and new rows agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flaggery.engine.model import decode_facts
from flaggery.store.change_index import touch_rows

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    touches = op.create_table(
        "change_touches",
        sa.Column(
            "kind",
            sa.String(length=8),
            nullable=False,
            comment="feature, group, test, subject or *",
        ),
        sa.Column("name", sa.String(length=200), nullable=False, comment="'' for kind *"),
        sa.Column("revision", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("kind", "name", "revision", name=op.f("pk_change_touches")),
        comment="What each change-log row touches, for filtered history "
        "(flaggery.store.change_index).",
    )
    op.create_index(
        op.f("ix_change_touches_revision"), "change_touches", ["revision"], unique=False
    )
    _fill(touches)


def _fill(touches: sa.Table) -> None:
    bind = op.get_bind()
    log = sa.table("change_log", sa.column("revision"), sa.column("payload"))
    after = -1
    while True:
        query = sa.select(log.c.revision, log.c.payload).where(log.c.revision > after)
        rows = bind.execute(query.order_by(log.c.revision).limit(BATCH)).all()
        if not rows:
            return
        batch = [r for row in rows for r in touch_rows(row.revision, decode_facts(row.payload))]
        if batch:
            bind.execute(touches.insert(), batch)
        after = rows[-1].revision


def downgrade() -> None:
    op.drop_index(op.f("ix_change_touches_revision"), table_name="change_touches")
    op.drop_table("change_touches")
