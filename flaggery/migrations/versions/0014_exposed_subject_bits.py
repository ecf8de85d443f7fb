"""exposed subjects as bitsets (one row per test and chunk of 65,536 ids); abtests.auto_stop

Revision ID: 0014
Revises: 0013

A registered subject's first exposure was one ``exposed_units`` row ('s:<id>'); it is now one
bit of ``exposed_subjects`` (10,000,000 subjects with dense ids: 153 rows, 1.25 MB per test).
The upgrade moves the existing 's:' rows into bits; hashed keys stay rows of ``exposed_units``.
``abtests.auto_stop`` (false for every existing test): the test stops itself when red.
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_CHUNK_BITS = 1 << 16


def upgrade() -> None:
    exposed = op.create_table(
        "exposed_subjects",
        sa.Column("test", sa.String(length=200), nullable=False),
        sa.Column(
            "chunk",
            sa.BigInteger(),
            autoincrement=False,
            nullable=False,
            comment="subject id >> 16",
        ),
        sa.Column(
            "bits",
            sa.LargeBinary(),
            nullable=False,
            comment="8,192 bytes: bit (id & 0xFFFF) set once the subject was exposed",
        ),
        sa.PrimaryKeyConstraint("test", "chunk", name=op.f("pk_exposed_subjects")),
        comment="Registered subjects exposed to a test during its window, one bit each.",
    )
    units = sa.table("exposed_units", sa.column("test", sa.String), sa.column("unit", sa.String))
    chunks: defaultdict[tuple[str, int], bytearray] = defaultdict(
        lambda: bytearray(_CHUNK_BITS // 8)
    )
    rows = op.get_bind().execute(sa.select(units.c.test, units.c.unit)).all()
    for test, unit in rows:
        if unit.startswith("s:"):
            subject = int(unit[2:])
            offset = subject & (_CHUNK_BITS - 1)
            chunks[test, subject >> 16][offset >> 3] |= 1 << (offset & 7)
    if chunks:
        op.bulk_insert(
            exposed,
            [{"test": t, "chunk": c, "bits": bytes(b)} for (t, c), b in sorted(chunks.items())],
        )
    op.execute(units.delete().where(units.c.unit.like("s:%")))

    # Not in batch mode: SQLite adds the column in place (ALTER TABLE .. ADD COLUMN .. DEFAULT),
    # where a batch would rebuild abtests, which the tables referencing it forbid.
    op.add_column(
        "abtests",
        sa.Column(
            "auto_stop",
            sa.Boolean(),
            server_default=sa.false(),
            nullable=False,
            comment="stop the test when its health turns red",
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("abtests", schema=None) as batch_op:
        batch_op.drop_column("auto_stop")
    op.drop_table("exposed_subjects")
