"""The loaded subject columns are the subjects table, on both databases (PostgreSQL reads
them with binary COPY), including the extreme ids and negative ones."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest
from sqlalchemy import select

from flaggery.store import tables as t
from flaggery.store.loader import load_state
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.subjects import load as subject_load
from flaggery.store.subjects.binary_copy import BinaryCopyError, _ColumnReader, copy_subject_columns
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


@pytest.mark.parametrize("parts", [2, 3])
async def test_a_large_table_read_in_parts_is_the_table_in_one_picture(
    store: AsyncFlaggery, is_postgres: bool, monkeypatch: pytest.MonkeyPatch, parts: int
) -> None:
    """Every table counts as large: the id range is split into parts read on their own
    connections; a write committed while they read must not show in any part."""
    monkeypatch.setattr(subject_load, "PARALLEL_ROWS", 0)
    monkeypatch.setattr(subject_load, "PARTS", parts)
    await store.increase_buckets(3)
    await store.add_subjects([*SUBJECTS, *((i, 1 + i % 4) for i in range(100, 400))])
    split: list[tuple[int, int] | None] = []
    written = asyncio.Event()

    async def copy_after_a_write(conn: Any, id_range: tuple[int, int] | None = None) -> Any:
        split.append(id_range)
        if len(split) == 1:  # the snapshot is exported: this write is not in it
            await store.add_subjects([(99, 5), (250_000, 5)])
            written.set()
        else:  # a helper reads once the write has committed
            await written.wait()
        return await copy_subject_columns(conn, id_range)

    monkeypatch.setattr(subject_load, "copy_subject_columns", copy_after_a_write)
    state = await load_state(store.database)
    columns = state.subjects
    expected = sorted((i, w) for i, w in [*SUBJECTS, *((i, 1 + i % 4) for i in range(100, 400))])
    assert list(zip(columns.ids, columns.weights, strict=True)) == expected
    if is_postgres:
        assert len(split) == parts
        assert split[0] is not None and split[0][0] == MIN_SUBJECT_ID
    added = 2 if is_postgres else 0  # SQLite reads by rows, without parts or this spy
    assert len((await load_state(store.database)).subjects.ids) == len(expected) + added
