"""Sorted typed-array columns: the compact shape of per-subject data.

A million subjects as Python objects cost hundreds of megabytes; as parallel ``array`` columns
sorted by id they cost a few bytes per value, and C-level slicing keeps patching them fast.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Mapping, Sequence

__all__ = ["patch_sorted_columns"]


def patch_sorted_columns(
    ids: array[int],
    columns: Sequence[array[int]],
    rows: Mapping[int, Sequence[int] | None],
) -> tuple[array[int], list[array[int]]]:
    """New copies of sorted `ids` and its parallel `columns` with `rows` applied.

    `rows` maps an id to its new values (one per column), or to None to delete it; ids not
    present are inserted in order. The untouched runs between patched ids are copied as array
    slices, so the cost is one C-level copy of the columns plus O(k log n) for k rows.
    """
    new_ids = array(ids.typecode)
    new_columns = [array(column.typecode) for column in columns]
    start = 0
    for row_id in sorted(rows):
        position = bisect_left(ids, row_id, start)
        new_ids += ids[start:position]
        for new_column, column in zip(new_columns, columns, strict=True):
            new_column += column[start:position]
        values = rows[row_id]
        if values is not None:
            new_ids.append(row_id)
            for new_column, value in zip(new_columns, values, strict=True):
                new_column.append(value)
        exists = position < len(ids) and ids[position] == row_id
        start = position + 1 if exists else position
    new_ids += ids[start:]
    for new_column, column in zip(new_columns, columns, strict=True):
        new_column += column[start:]
    return new_ids, new_columns
