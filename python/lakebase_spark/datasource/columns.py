"""Columns as the jar-free reader reads them: the Spark type of each Postgres column, the SQL that
selects it, and the Arrow conversion its batches need. Types follow Spark's JDBC mapping for Postgres,
except that ``timestamp`` (without time zone) reads as ``timestamp_ntz``: the wall clock as stored.

Types ADBC has no Arrow form for Spark (uuid, json, inet, intervals, geometry, enums...) are read as
their text (``column::text``), as Spark's JDBC reader reads them as strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from ..names import TableName, quote_identifier

if TYPE_CHECKING:
    import psycopg
    import pyarrow as pa

__all__ = ["ReadColumn", "query_columns", "table_columns"]

#: Postgres type name -> Spark type, for types read as they are.
_DIRECT = {
    "bool": "boolean",
    "int2": "smallint",
    "int4": "int",
    "int8": "bigint",
    "float4": "float",
    "float8": "double",
    "text": "string",
    "varchar": "string",
    "bpchar": "string",
    "name": "string",
    "bytea": "binary",
    "date": "date",
    "timestamp": "timestamp_ntz",
    "timestamptz": "timestamp",
}
#: Numeric without a precision: Spark's JDBC reader makes it decimal(38,18).
_DEFAULT_DECIMAL = (38, 18)
#: Numerics of up to this many digits travel as their unscaled value in a bigint.
_UNSCALED_DIGITS = 18


@dataclass(frozen=True)
class ReadColumn:
    """One column of a read: its name, Spark type, SELECT expression and Arrow conversion."""

    name: str
    spark_type: str
    expression: str
    #: For numeric columns: the decimal(precision, scale) to convert to, from text or (``unscaled``)
    #: from the value times 10^scale as a bigint.
    decimal: tuple[int, int] | None = None
    array: bool = False
    unscaled: bool = False
    #: The Postgres type filters may be pushed on (filters.py); "" for none.
    pg_type: str = ""

    def convert(self, column: pa.Array) -> pa.Array:
        """The Arrow column as Spark expects it."""
        import pyarrow as pa

        if self.decimal is None:
            return column
        if self.unscaled:  # the same 128-bit integers, read with the scale: exact, no parsing
            return column.cast(pa.decimal128(38, 0)).view(pa.decimal128(*self.decimal))
        target: pa.DataType = pa.decimal128(*self.decimal)
        if self.array:
            target = pa.list_(target)
        return column.cast(target)


def table_columns(conn: psycopg.Connection[Any], table: TableName) -> list[ReadColumn]:
    """The table's columns (domains as their base type), in order; raises if there is no such table."""
    from ..errors import LakebaseSparkError

    row = conn.execute("SELECT to_regclass(%s)::oid", (table.quoted(),)).fetchone()
    if row is None or row[0] is None:
        raise LakebaseSparkError(f"table {table} does not exist (or the role may not see it)")
    rows = conn.execute(
        """
        SELECT a.attname, coalesce(e.typname, b.typname, t.typname), e.oid IS NOT NULL,
               CASE WHEN b.oid IS NOT NULL THEN t.typtypmod ELSE a.atttypmod END
        FROM pg_attribute a
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_type b ON b.oid = t.typbasetype AND t.typtype = 'd'
        LEFT JOIN pg_type e ON e.oid = coalesce(b.typelem, t.typelem)
             AND coalesce(b.typcategory, t.typcategory) = 'A'
        WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        (row[0],),
    ).fetchall()
    return [_column(name, type_name, bool(array), typmod) for name, type_name, array, typmod in rows]


def query_columns(conn: psycopg.Connection[Any], query: str) -> list[ReadColumn]:
    """The columns a query returns (run with no rows)."""
    cursor = conn.execute(sql.SQL("SELECT * FROM ({}) AS q LIMIT 0").format(sql.SQL(query)))
    columns = []
    for description in cursor.description or []:
        info = conn.execute(
            "SELECT coalesce(e.typname, t.typname), e.oid IS NOT NULL FROM pg_type t "
            "LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A' WHERE t.oid = %s",
            (description.type_code,),
        ).fetchone()
        type_name, array = info if info else ("text", False)
        typmod = -1
        if type_name == "numeric" and description.precision is not None and description.scale is not None:
            typmod = ((description.precision << 16) | description.scale) + 4
        columns.append(_column(description.name, type_name, bool(array), typmod))
    return columns


def _column(name: str, type_name: str, array: bool, typmod: int) -> ReadColumn:
    column = quote_identifier(name)
    if type_name == "numeric":
        precision, scale = ((typmod - 4) >> 16, (typmod - 4) & 0xFFFF) if typmod >= 4 else _DEFAULT_DECIMAL
        if precision > 38:
            precision, scale = _DEFAULT_DECIMAL
        spark = f"decimal({precision},{scale})"
        cast = f"numeric({precision},{scale})"
        if array:
            return ReadColumn(
                name, f"array<{spark}>", f"{column}::{cast}[]::text[]", (precision, scale), True
            )
        exact = "numeric" if typmod >= 4 and (typmod - 4) >> 16 <= 38 else ""  # read as stored: pushable
        if precision <= _UNSCALED_DIGITS:  # binary int8 instead of text: a tenth less time per row
            scaled = f"({column}::{cast} * 1{'0' * scale})::int8"
            return ReadColumn(name, spark, scaled, (precision, scale), unscaled=True, pg_type=exact)
        return ReadColumn(name, spark, f"{column}::{cast}::text", (precision, scale), pg_type=exact)
    direct = _DIRECT.get(type_name)
    if direct is None:
        if array:
            return ReadColumn(name, "array<string>", f"{column}::text[]", array=True)
        return ReadColumn(name, "string", f"{column}::text")
    if array:
        return ReadColumn(name, f"array<{direct}>", column, array=True)
    return ReadColumn(name, direct, column, pg_type=type_name)
