"""Many rows in one statement: executemany costs a round of parameter processing per row.

On PostgreSQL the rows go as one array per column and ``unnest`` turns them back into rows
inside the server (multiple set-returning functions in a select list are zipped), so 2,000
rows cost one statement of a few milliseconds instead of 20 ms of executemany. SQLite runs
in process, where executemany is already cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["insert_rows"]


async def insert_rows(
    conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert `rows` (each with the same keys, column names of `table`) into `table`."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        await conn.execute(insert(table), list(rows))
        return
    columns = list(rows[0])
    arrays = [
        bindparam(f"rows_{column}", [row[column] for row in rows], ARRAY(table.c[column].type))
        for column in columns
    ]
    source = select(*(func.unnest(array) for array in arrays))
    await conn.execute(insert(table).from_select(columns, source))
