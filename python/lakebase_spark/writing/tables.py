"""The target table as the writer sees it: its name, its columns, and whether a DataFrame fits it.

Everything here runs on the driver before any row is sent, so bad input (a hostile name, a missing
column, a type Postgres cannot take, an absent key) fails the write with nothing written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from ..errors import WriteInputError

if TYPE_CHECKING:
    import psycopg
    from pyspark.sql.types import DataType, StructType

__all__ = ["Column", "TableInfo", "TableName", "match_columns"]

#: Postgres keeps the first 63 bytes of an identifier and silently drops the rest.
MAX_IDENTIFIER_BYTES = 63
_UNQUOTED = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_PART = re.compile(r'"((?:[^"]|"")*)"|([^."]*)')


@dataclass(frozen=True)
class TableName:
    """A schema-qualified table name, parsed by Postgres' rules: unquoted parts fold to lower case."""

    schema: str
    name: str

    @classmethod
    def parse(cls, text: str | tuple[str, str]) -> TableName:
        """``"orders"``, ``"shop.orders"``, ``'"Shop"."Orders"'`` or an exact ``(schema, table)`` tuple."""
        if isinstance(text, tuple):
            if len(text) != 2:
                raise WriteInputError(f"a table tuple must be (schema, table), got {text!r}")
            parts = [_check_part(p, text) for p in text]
            return cls(parts[0], parts[1])
        if not isinstance(text, str) or not text.strip():
            raise WriteInputError(f"table must be a name such as 'public.orders', got {text!r}")
        parts = _split(text.strip())
        if len(parts) == 1:
            parts = ["public", *parts]
        if len(parts) != 2:
            raise WriteInputError(
                f"table {text!r} must be 'table' or 'schema.table' (quote a name that contains a dot)"
            )
        return cls(parts[0], parts[1])

    def quoted(self) -> str:
        return f"{quote_identifier(self.schema)}.{quote_identifier(self.name)}"

    def sql(self) -> sql.Identifier:
        """The name for psycopg's SQL composition."""
        return sql.Identifier(self.schema, self.name)

    def sibling(self, name: str) -> TableName:
        """Another table in the same schema (staging tables, the commit log)."""
        return TableName(self.schema, name)

    def __str__(self) -> str:
        return self.quoted()


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _split(text: str) -> list[str]:
    parts: list[str] = []
    position = 0
    while True:
        m = _PART.match(text, position)
        assert m is not None  # the pattern matches the empty string
        quoted, bare = m.group(1), m.group(2)
        if quoted is None and text.startswith('"', position):
            raise WriteInputError(f"table name {text!r} does not parse: a double quote is not closed")
        if quoted is not None:
            part = quoted.replace('""', '"')
        else:
            if not _UNQUOTED.fullmatch(bare):
                raise WriteInputError(
                    f"table name {text!r} is refused: {bare!r} is not a plain identifier (letters, digits, "
                    "_ and $, not starting with a digit). Double-quote a name that needs other characters, "
                    'e.g. \'"My Schema"."Orders"\''
                )
            part = bare.lower()
        parts.append(_check_part(part, text))
        position = m.end()
        if position == len(text):
            return parts
        if text[position] != ".":
            raise WriteInputError(f"table name {text!r} does not parse: unexpected {text[position]!r}")
        position += 1


def _check_part(part: object, whole: object) -> str:
    if not isinstance(part, str) or not part:
        raise WriteInputError(f"table name {whole!r} has an empty part")
    if any(ord(c) < 32 or ord(c) == 127 for c in part):
        raise WriteInputError(f"table name {whole!r} contains a control character; refused")
    if len(part.encode()) > MAX_IDENTIFIER_BYTES:
        raise WriteInputError(
            f"table name part {part!r} is longer than Postgres' {MAX_IDENTIFIER_BYTES} bytes, "
            "which Postgres would silently truncate"
        )
    return part


@dataclass(frozen=True)
class Column:
    """One column of the target table, from the catalog."""

    name: str
    #: format_type(), e.g. ``numeric(12,2)``, ``text[]``.
    type: str
    #: pg_type.typname; for arrays the element's, with ``array`` set.
    base: str
    #: pg_type.typcategory of the (element) type: N numeric, S string, B boolean, D date/time, U other...
    category: str
    array: bool


@dataclass(frozen=True)
class TableInfo:
    name: TableName
    columns: tuple[Column, ...]
    #: Column sets with a unique index or constraint (the targets ON CONFLICT can name).
    unique_keys: tuple[frozenset[str], ...]

    @classmethod
    def load(cls, conn: psycopg.Connection[Any], table: TableName) -> TableInfo | None:
        """The table's columns and unique keys, or None when it does not exist."""
        row = conn.execute("SELECT to_regclass(%s)::oid", (table.quoted(),)).fetchone()
        if row is None or row[0] is None:
            return None
        oid = row[0]
        columns = tuple(
            Column(name, type_, base, category, array)
            for name, type_, base, category, array in conn.execute(
                """
                SELECT a.attname, format_type(a.atttypid, a.atttypmod),
                       coalesce(e.typname, t.typname), coalesce(e.typcategory, t.typcategory),
                       e.oid IS NOT NULL
                FROM pg_attribute a
                JOIN pg_type t ON t.oid = a.atttypid
                LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
                WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
                ORDER BY a.attnum
                """,
                (oid,),
            ).fetchall()
        )
        keys = tuple(
            frozenset(names)
            for (names,) in conn.execute(
                """
                SELECT array_agg(a.attname)
                FROM pg_index i
                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                WHERE i.indrelid = %s AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
                GROUP BY i.indexrelid
                """,
                (oid,),
            ).fetchall()
        )
        return cls(table, columns, keys)


def match_columns(schema: StructType, info: TableInfo) -> list[tuple[str, Column]]:
    """Pair each DataFrame column with its table column (exact name, else the one case-insensitive match).

    Raises :class:`WriteInputError` naming the column for a column the table lacks and for a type
    the table's column cannot take.
    """
    by_name = {c.name: c for c in info.columns}
    by_lower: dict[str, list[Column]] = {}
    for c in info.columns:
        by_lower.setdefault(c.name.lower(), []).append(c)
    pairs: list[tuple[str, Column]] = []
    seen: set[str] = set()
    for field in schema.fields:
        column = by_name.get(field.name)
        if column is None:
            candidates = by_lower.get(field.name.lower(), [])
            if len(candidates) != 1:
                raise WriteInputError(
                    f"column {field.name!r} of the DataFrame is not a column of {info.name} "
                    f"(its columns: {[c.name for c in info.columns]}); drop or rename it before writing"
                )
            column = candidates[0]
        if column.name in seen:
            raise WriteInputError(f"two DataFrame columns map to column {column.name!r} of {info.name}")
        seen.add(column.name)
        problem = type_problem(field.dataType, column)
        if problem:
            raise WriteInputError(
                f"column {field.name!r} ({field.dataType.simpleString()}) cannot be written into "
                f"{info.name}.{quote_identifier(column.name)} of type {column.type}: {problem}"
            )
        pairs.append((field.name, column))
    return pairs


def type_problem(spark_type: DataType, column: Column) -> str | None:
    """Why ``column`` cannot take values of ``spark_type`` through COPY text, or None when it can."""
    from pyspark.sql import types as T

    if isinstance(spark_type, T.ArrayType):
        if not column.array:
            return "an array goes into an array column (e.g. text[])"
        element = Column(column.name, column.type, column.base, column.category, False)
        inner = spark_type.elementType
        while isinstance(inner, T.ArrayType):  # Postgres arrays are n-dimensional with one element type
            inner = inner.elementType
        return type_problem(inner, element)
    if column.array:
        return "the column is an array: write an array column (e.g. F.array(...)) or split the values"
    category, base = column.category, column.base
    if isinstance(spark_type, T.BooleanType):
        return None if base == "bool" else "booleans go into boolean columns"
    if isinstance(spark_type, (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.DecimalType)):
        return None if category == "N" else "numbers go into numeric columns; cast the column first"
    if isinstance(spark_type, (T.FloatType, T.DoubleType)):
        ok = base in ("float4", "float8", "numeric")
        return None if ok else "floating-point values go into real, double precision or numeric columns"
    if isinstance(spark_type, T.StringType):
        if category in ("N", "B", "D", "A") or base == "bytea":
            return "cast the string to the column's type in Spark first (e.g. F.col(c).cast('int'))"
        return None  # text, varchar, json, jsonb, uuid, enums, inet...: Postgres parses the text
    if isinstance(spark_type, T.BinaryType):
        return None if base == "bytea" else "binary values go into bytea columns"
    if isinstance(spark_type, T.DateType):
        return None if base in ("date", "timestamp", "timestamptz") else "dates go into date columns"
    if isinstance(spark_type, (T.TimestampType, T.TimestampNTZType)):
        ok = base in ("timestamp", "timestamptz")
        return None if ok else "timestamps go into timestamp or timestamptz columns"
    return (
        f"Spark type {spark_type.simpleString()} has no COPY encoding: convert it first "
        "(maps and structs: F.to_json(col) into a json or jsonb column)"
    )
