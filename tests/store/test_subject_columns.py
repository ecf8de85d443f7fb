"""The loaded subject columns are the subjects table, on both databases (PostgreSQL reads
them with binary COPY), including the extreme ids and negative ones."""

from __future__ import annotations

import struct

import pytest
from sqlalchemy import select

from flaggery.store import tables as t
from flaggery.store.loader import load_state
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.subject_copy import BinaryCopyError, _ColumnReader
from flaggery.store.validation import MAX_SUBJECT_ID, MIN_SUBJECT_ID

SUBJECTS = [(MIN_SUBJECT_ID, 1), (-5, 7), (0, 2**31 - 1), (3, 1), (2**33, 9), (MAX_SUBJECT_ID, 3)]


async def test_loaded_columns_are_the_table(store: AsyncFlaggery) -> None:
    await store.increase_buckets(3)
    await store.add_subjects(SUBJECTS)
    state = await load_state(store.database)
    async with store.database.read() as conn:
        query = select(t.subjects.c.id, t.subjects.c.weight, t.subjects.c.bucket_id)
        rows = (await conn.execute(query.order_by(t.subjects.c.id))).all()
    columns = state.subjects
    assert list(zip(columns.ids, columns.weights, columns.buckets, strict=True)) == [
        tuple(row) for row in rows
    ]
    assert [row[0] for row in rows] == sorted(subject_id for subject_id, _ in SUBJECTS)


def _stream(rows: list[tuple[int, int, int]]) -> bytes:
    header = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 4 + struct.pack(">I", 2) + b"xx"
    body = b"".join(struct.pack(">hiqiqiq", 3, 8, a, 8, b, 8, c) for a, b, c in rows)
    return header + body + b"\xff\xff"


@pytest.mark.parametrize("chunk", [1, 5, 37, 38, 39, 1000])
async def test_rows_split_across_chunks_are_read_whole(chunk: int) -> None:
    rows = [(MIN_SUBJECT_ID, 1, 2), (-1, 0, 3), (MAX_SUBJECT_ID, 2**62, 4)]
    stream, reader = _stream(rows), _ColumnReader()
    for start in range(0, len(stream), chunk):
        await reader.feed(stream[start : start + chunk])
    columns = reader.finish()
    assert list(zip(columns.ids, columns.weights, columns.buckets, strict=True)) == rows


async def test_a_truncated_or_foreign_stream_is_refused() -> None:
    truncated = _ColumnReader()
    await truncated.feed(_stream([(1, 2, 3)])[:-2])
    with pytest.raises(BinaryCopyError):
        truncated.finish()
    with pytest.raises(BinaryCopyError):
        await _ColumnReader().feed(b"id,weight,bucket\n" * 3)
    null_value = _stream([(1, 2, 3)]).replace(struct.pack(">iq", 8, 2), struct.pack(">iq", -1, 2))
    with pytest.raises(BinaryCopyError):
        await _ColumnReader().feed(null_value)
