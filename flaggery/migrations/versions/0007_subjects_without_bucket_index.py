"""subjects without a bucket index

No query looks subjects up by bucket (placement reads the buckets table's stored weights, and
buckets are never deleted), yet every added subject paid for an entry in ``ix_subjects_bucket_id``:
with only as many keys as buckets, its insertions crowd a few pages and deduplicate them over and
over: a binary COPY of a million subjects into PostgreSQL took 4.4 s with it and 1.8 s without
(the foreign key dropped in both, machine shared, load average 5).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 23:15:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subjects_bucket_id"))


def downgrade() -> None:
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subjects_bucket_id"), ["bucket_id"], unique=False)
