"""The subjects table read and written with PostgreSQL's binary COPY, as typed columns.

Fetching ten million subjects as rows costs a Python tuple and three int objects per subject
before the loader packs them into arrays, and inserting them as rows costs as much again.
Binary COPY moves fixed-size rows instead, which this module splits into columns, or weaves
from them, with strided slices only (no per-row Python code). In PostgreSQL's binary format a
row is a 2-byte field count then, per column, a 4-byte length and the value, big-endian: 38
bytes for the ``(int8, int8, int8)`` rows read, 34 for the ``(int8, int8, int4)`` rows written.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import AsyncIterator, Sequence
from typing import Any

from flaggery.engine.model import SubjectColumns

__all__ = ["copy_subject_columns", "copy_subjects_in", "encode_rows"]

QUERY = "SELECT id, weight, bucket_id::int8 FROM subjects ORDER BY id"
RANGE_QUERY = (
    "SELECT id, weight, bucket_id::int8 FROM subjects WHERE id BETWEEN $1 AND $2 ORDER BY id"
)
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_HEADER = len(_SIGNATURE) + 4 + 4  # then flags and the header extension's length
_TRAILER = b"\xff\xff"
_ROW = 2 + 3 * (4 + 8)
_VALUE_OFFSETS = (6, 18, 30)  # of each column's value within a row
_FIELD_COUNT = b"\x00\x03"
_LENGTH = b"\x00\x00\x00\x08"

_IN_COLUMNS = ["id", "weight", "bucket_id"]
# A written row with zero values: the field count and each value's length are the same in all.
_IN_TEMPLATE = bytes.fromhex("0003" + "00000008" + "00" * 8 + "00000008" + "00" * 8 + "00000004")
_IN_TEMPLATE += bytes(4)
_IN_ROW = len(_IN_TEMPLATE)
# Per column: where its value starts in a row, and how many leading bytes of the column's
# big-endian 8-byte values to skip (a bucket id fits the 4 of an int4).
_IN_VALUES = ((6, 0), (18, 0), (30, 4))
# Rows per message: large enough that the per-chunk Python is noise, small enough that
# PostgreSQL starts inserting while the next chunk is encoded (2.2 MB).
CHUNK_ROWS = 65_536


class BinaryCopyError(ValueError):
    """The COPY stream is not the three non-null int8 columns this reader expects."""


async def copy_subject_columns(
    asyncpg_connection: Any, id_range: tuple[int, int] | None = None
) -> SubjectColumns:
    """Every subject (or those with ids in the inclusive ``id_range``), sorted by id, read on
    ``asyncpg_connection`` (in its transaction, so a REPEATABLE READ load sees the same
    picture). Costs one pass over 38 bytes a subject plus the arrays (24 bytes a subject);
    raises BinaryCopyError on an unexpected stream."""
    reader = _ColumnReader()
    query, args = (QUERY, ()) if id_range is None else (RANGE_QUERY, id_range)
    await asyncpg_connection.copy_from_query(query, *args, output=reader.feed, format="binary")
    return reader.finish()


class _ColumnReader:
    """Accepts the COPY stream in chunks of any size (a row may span two)."""

    def __init__(self) -> None:
        self.columns = SubjectColumns(array("q"), array("q"), array("q"))
        self._pending = b""
        self._header_read = False

    async def feed(self, chunk: bytes) -> None:
        data = self._pending + chunk
        if not self._header_read:
            header = _header_length(data)
            if header is None or len(data) < header:
                self._pending = data
                return
            data = data[header:]
            self._header_read = True
        rows = len(data) // _ROW
        self._pending = data[rows * _ROW :]
        if rows:
            _append_rows(self.columns, memoryview(data)[: rows * _ROW], rows)

    def finish(self) -> SubjectColumns:
        if not self._header_read or self._pending != _TRAILER:
            raise BinaryCopyError("The binary COPY stream of subjects ended unexpectedly.")
        return self.columns


def _header_length(data: bytes) -> int | None:
    """The header's length (its extension may grow it), None until enough of it arrived;
    BinaryCopyError if the stream is not binary COPY."""
    if len(data) < _HEADER:
        return None
    if data[: len(_SIGNATURE)] != _SIGNATURE:
        raise BinaryCopyError("The subjects COPY stream is not in PostgreSQL's binary format.")
    extension = int.from_bytes(data[_HEADER - 4 : _HEADER], "big")
    return _HEADER + extension


def _append_rows(columns: SubjectColumns, block: memoryview, rows: int) -> None:
    """Append ``rows`` whole rows of ``block`` to the three columns: per column, each of the
    8 value bytes of every row is one strided slice, interleaved into native order."""
    raw = block.tobytes()
    if raw[0::_ROW] + raw[1::_ROW] != _FIELD_COUNT[:1] * rows + _FIELD_COUNT[1:] * rows:
        raise BinaryCopyError("A subjects COPY row does not hold three fields.")
    for column, offset in zip(columns.__struct_fields__, _VALUE_OFFSETS, strict=True):
        for index, byte in enumerate(_LENGTH):
            if raw[offset - 4 + index :: _ROW] != bytes([byte]) * rows:
                raise BinaryCopyError("A subjects COPY value is not a non-null int8.")
        native = bytearray(rows * 8)
        for index in range(8):
            position = index if sys.byteorder == "big" else 7 - index
            native[position::8] = raw[offset + index :: _ROW]
        getattr(columns, column).frombytes(native)


async def copy_subjects_in(
    asyncpg_connection: Any, columns: Sequence[array[int]], timeout: float
) -> None:
    """Insert rows into subjects with binary COPY: ``columns`` are parallel ids, weights and
    bucket ids (typecode "q"; bucket ids below 2^31). Raises what asyncpg raises (a
    UniqueViolationError for an id that exists) and TimeoutError after ``timeout`` seconds."""
    await asyncpg_connection.copy_to_table(
        "subjects",
        source=_in_stream(columns),
        columns=_IN_COLUMNS,
        format="binary",
        timeout=timeout,
    )


async def _in_stream(columns: Sequence[array[int]]) -> AsyncIterator[bytes]:
    yield _SIGNATURE + bytes(8)  # no flags, no header extension
    for start in range(0, len(columns[0]), CHUNK_ROWS):
        yield encode_rows(columns, start, min(start + CHUNK_ROWS, len(columns[0])))
    yield _TRAILER


def encode_rows(columns: Sequence[array[int]], start: int, stop: int) -> bytes:
    """Rows ``start`` to ``stop`` of the three columns in COPY's binary row format."""
    rows = stop - start
    out = bytearray(_IN_TEMPLATE * rows)
    for column, (offset, skip) in zip(columns, _IN_VALUES, strict=True):
        values = column[start:stop]
        if sys.byteorder == "little":
            values.byteswap()
        raw = values.tobytes()
        for index in range(skip, 8):
            out[offset + index - skip :: _IN_ROW] = raw[index::8]
    return bytes(out)
