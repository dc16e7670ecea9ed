"""Table names for sharded reads and writes: ``"schema.table"`` split, quoted, never pasted."""

from __future__ import annotations

from .errors import ShardedReadError
from .keys import quote_identifier

__all__ = ["parse_table", "quote_table"]


def parse_table(table: str | tuple[str, str]) -> tuple[str, str]:
    """``"schema.table"``, ``"table"`` (schema public) or a tuple; each part is quoted, never pasted."""
    parts = tuple(table) if isinstance(table, tuple) else tuple(table.split("."))
    if len(parts) == 1:
        parts = ("public", parts[0])
    if len(parts) != 2 or not all(isinstance(p, str) and p and "\x00" not in p for p in parts):
        raise ShardedReadError(
            f"table must be 'schema.table', 'table' or a (schema, table) tuple, got {table!r}"
        )
    return parts[0], parts[1]


def quote_table(table: tuple[str, str]) -> str:
    return f"{quote_identifier(table[0])}.{quote_identifier(table[1])}"
