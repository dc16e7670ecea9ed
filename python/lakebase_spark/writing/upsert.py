"""Upsert: the staged rows applied with ``INSERT ... ON CONFLICT (key) DO UPDATE``, and the checks that
make one row per key win, the same one on every run.

Postgres refuses to update a row twice in one statement, so a key repeated in the input needs a rule:
``order_by`` names the column(s) whose greatest values win (``DESC NULLS LAST``, compared in order).
When two different rows tie on every ``order_by`` column, which one wins would be up to the sort, so
two runs could disagree: that is refused, naming examples. Rows that are equal in every column may
tie: whichever wins, the result is the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg import sql

from ..errors import WriteInputError
from ..names import TableName, quote_identifier
from .tables import Column, TableInfo

if TYPE_CHECKING:
    import psycopg

__all__ = ["apply_statement", "check_upsert_key", "upsert_source"]

#: How many offending keys an error shows.
EXAMPLES = 5


def check_upsert_key(info: TableInfo, keys: list[str], pairs: list[tuple[str, Column]]) -> None:
    """The table must have a primary key or unique index on exactly the key's columns."""
    names = {name: column.name for name, column in pairs}
    table_keys = frozenset(names[k] for k in keys)
    if table_keys not in info.unique_keys:
        raise WriteInputError(
            f"upsert into {info.name} on key {keys} needs a primary key or unique index on exactly those "
            f"columns (the table has unique keys {[sorted(k) for k in info.unique_keys] or 'none'}): "
            f"ALTER TABLE {info.name} ADD PRIMARY KEY "
            f"({', '.join(map(quote_identifier, sorted(table_keys)))})"
        )


def upsert_source(
    conn: psycopg.Connection[Any],
    stage: TableName,
    target: TableName,
    keys: list[str],
    order_by: list[str],
) -> tuple[sql.Composable, int]:
    """The staged rows to upsert, one per key, and how many rows the stage holds.

    ``keys`` and ``order_by`` are the table's column names. Refuses NULL keys, repeated keys without
    ``order_by``, and ties between different rows on ``order_by``.
    """
    key_columns = [sql.Identifier(k) for k in keys]
    key_list = sql.SQL(", ").join(key_columns)
    any_null = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(k) for k in key_columns)
    row = conn.execute(
        sql.SQL("SELECT count(*), count(*) FILTER (WHERE {}) FROM {}").format(any_null, stage.sql())
    ).fetchone()
    staged, nulls = (int(row[0]), int(row[1])) if row else (0, 0)
    if nulls:
        raise WriteInputError(
            f"upsert into {target}: {nulls} row(s) have a NULL in key {keys}; a NULL key matches no row, "
            "so each would be inserted again on every run. Filter them out or fill them; nothing was written"
        )
    if not order_by:
        repeated = conn.execute(
            sql.SQL("SELECT {}, count(*) FROM {} GROUP BY {} HAVING count(*) > 1 LIMIT {}").format(
                key_list, stage.sql(), key_list, sql.Literal(EXAMPLES)
            )
        ).fetchall()
        if repeated:
            raise WriteInputError(
                f"upsert into {target}: key {keys} repeats in the input, e.g. {_examples(repeated)}; "
                "Postgres cannot update a row twice in one statement. Deduplicate first, or pass "
                "order_by='<column>' to keep the row with the greatest value; nothing was written"
            )
        return stage.sql(), staged
    order = sql.SQL(", ").join(sql.SQL("{} DESC NULLS LAST").format(sql.Identifier(c)) for c in order_by)
    # Rows of one key that rank first on order_by but differ somewhere: the winner would be arbitrary.
    ties = conn.execute(
        sql.SQL(
            "SELECT {k}, count(DISTINCT whole) FROM (SELECT {k}, s::text AS whole, "
            "rank() OVER (PARTITION BY {k} ORDER BY {o}) AS r FROM {s} s) ranked "
            "WHERE r = 1 GROUP BY {k} HAVING count(DISTINCT whole) > 1 LIMIT {n}"
        ).format(k=key_list, o=order, s=stage.sql(), n=sql.Literal(EXAMPLES))
    ).fetchall()
    if ties:
        raise WriteInputError(
            f"upsert into {target}: rows of key {keys} differ but tie on order_by {order_by}, e.g. "
            f"{_examples(ties)}; which one would win is undefined, so two runs could disagree. Add a column "
            "that breaks the tie (order_by=['updated_at', 'sequence']) or deduplicate first; nothing was "
            "written"
        )
    source = sql.SQL("(SELECT DISTINCT ON ({k}) * FROM {s} ORDER BY {k}, {o}) AS latest").format(
        k=key_list, s=stage.sql(), o=order
    )
    return source, staged


def apply_statement(
    target: TableName,
    columns: list[str],
    source: sql.Composable,
    keys: list[str] | None,
) -> sql.Composed:
    """``INSERT INTO target (columns) SELECT columns FROM source``, with ``ON CONFLICT`` for keys."""
    column_list = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    statement = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
        target.sql(), column_list, column_list, source
    )
    if not keys:
        return statement
    conflict = sql.SQL(", ").join(sql.Identifier(k) for k in keys)
    updates = [
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
        for c in columns
        if c not in keys
    ]
    action: sql.Composable = sql.SQL("DO NOTHING")
    if updates:
        action = sql.SQL("DO UPDATE SET {}").format(sql.SQL(", ").join(updates))
    return sql.SQL("{} ON CONFLICT ({}) {}").format(statement, conflict, action)


def _examples(rows: list[tuple[Any, ...]]) -> list[Any]:
    """The key of each example row (the last field is a count): a value, or a tuple for composite keys."""
    return [row[:-1] if len(row) > 2 else row[0] for row in rows]
