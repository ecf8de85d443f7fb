"""The subjects table read with PostgreSQL's binary COPY, straight into typed columns.

Fetching ten million subjects as rows costs a Python tuple and three int objects per subject
before the loader packs them into arrays. Binary COPY sends fixed-size rows instead, which
this module splits into columns with strided slices only (no per-row Python code): in
PostgreSQL's binary format every row of ``(int8, int8, int8)`` is 38 bytes, a 2-byte field
count then, per column, a 4-byte length (8) and the value, big-endian.
"""

from __future__ import annotations

import sys
from array import array
from typing import Any

from flaggery.engine.model import SubjectColumns

__all__ = ["copy_subject_columns"]

QUERY = "SELECT id, weight, bucket_id::int8 FROM subjects ORDER BY id"
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_HEADER = len(_SIGNATURE) + 4 + 4  # then flags and the header extension's length
_TRAILER = b"\xff\xff"
_ROW = 2 + 3 * (4 + 8)
_VALUE_OFFSETS = (6, 18, 30)  # of each column's value within a row
_FIELD_COUNT = b"\x00\x03"
_LENGTH = b"\x00\x00\x00\x08"


class BinaryCopyError(ValueError):
    """The COPY stream is not the three non-null int8 columns this reader expects."""


async def copy_subject_columns(asyncpg_connection: Any) -> SubjectColumns:
    """Every subject, sorted by id, read on ``asyncpg_connection`` (in its transaction, so
    a REPEATABLE READ load sees the same picture). Costs one pass over 38 bytes a subject
    plus the arrays (24 bytes a subject); raises BinaryCopyError on an unexpected stream."""
    reader = _ColumnReader()
    await asyncpg_connection.copy_from_query(QUERY, output=reader.feed, format="binary")
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
