"""The target table as the writer sees it: its name, its columns, and whether a DataFrame fits it.

Everything here runs on the driver before any row is sent, so bad input (a hostile name, a missing
column, a type Postgres cannot take, an absent key) fails the write with nothing written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from ..errors import WriteInputError
from ..names import TableName, quote_identifier

if TYPE_CHECKING:
    import psycopg
    from pyspark.sql.types import DataType, StructType

__all__ = [
    "Column",
    "TableInfo",
    "TableName",
    "check_assignments",
    "column_types_option",
    "match_columns",
    "parameter_type",
    "quote_identifier",
]

# The JSON fields of the column-types option (WriteOptions.java reads them; tests/test_contract.py checks).
TYPE, CATEGORY, ARRAY, DELIMITER = "type", "category", "array", "delimiter"


@dataclass(frozen=True)
class Column:
    """One column of the target table, from the catalog."""

    name: str
    #: format_type(), e.g. ``numeric(12,2)``, ``text[]``.
    type: str
    #: pg_type.typname; for arrays the element's, with ``array`` set; for a domain, its base type's.
    base: str
    #: pg_type.typcategory of the (element) type: N numeric, S string, B boolean, D date/time, U other...
    category: str
    array: bool
    #: The array literal's element separator (pg_type.typdelim of the element: ``,``, or ``;`` for box).
    delimiter: str = ","


def column_types_option(columns: Sequence[Column]) -> str:
    """What the JVM's encoder needs to know of each target column, in the DataFrame's column order."""
    return json.dumps(
        [{TYPE: c.base, CATEGORY: c.category, ARRAY: c.array, DELIMITER: c.delimiter} for c in columns],
        separators=(",", ":"),
    )


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
            Column(name, type_, base, category, array, delimiter)
            for name, type_, base, category, array, delimiter in conn.execute(
                """
                SELECT a.attname, format_type(a.atttypid, a.atttypmod),
                       coalesce(eb.typname, e.typname, b.typname, t.typname),
                       coalesce(eb.typcategory, e.typcategory, b.typcategory, t.typcategory),
                       e.oid IS NOT NULL,
                       coalesce(e.typdelim, b.typdelim, t.typdelim)::text
                FROM pg_attribute a
                JOIN pg_type t ON t.oid = a.atttypid
                -- a domain's base type (domains over arrays included)
                LEFT JOIN pg_type b ON b.oid = t.typbasetype AND t.typtype = 'd'
                LEFT JOIN pg_type e ON e.oid = coalesce(b.typelem, t.typelem)
                     AND coalesce(b.typcategory, t.typcategory) = 'A'
                LEFT JOIN pg_type eb ON eb.oid = e.typbasetype AND e.typtype = 'd'
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

    Raises :class:`WriteInputError` naming the column for a column the table lacks and for a Spark
    type the writer has no encoding for; whether the column's type takes the values is
    :func:`check_assignments`' to say.
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
        if parameter_type(field.dataType) is _UNSUPPORTED:
            spark_type = field.dataType.simpleString()
            raise WriteInputError(
                f"column {field.name!r} ({spark_type}) cannot be written into "
                f"{info.name}.{quote_identifier(column.name)}: Spark type {spark_type} has no COPY encoding: "
                "convert it first (maps and structs: F.to_json(col) into a json or jsonb column)"
            )
        pairs.append((field.name, column))
    return pairs


#: A Spark type the writer cannot encode at all (maps, structs, intervals...).
_UNSUPPORTED = "unsupported"


def parameter_type(spark_type: DataType, column: Column | None = None) -> str | None:
    """The Postgres type Spark's JDBC writer binds a value of ``spark_type`` as (through pgjdbc).

    ``None`` when Postgres parses the value as the column's own type: strings (pgjdbc binds them as
    varchar, which Spark's writer cannot assign to most types; this writer parses them instead, as
    COPY does), arrays of strings into array columns (the same, element by element), and dates and
    timestamps (pgjdbc sends those untyped). Other arrays are bound as arrays of Spark's Postgres
    element type (``createArrayOf``), which a text column takes as their text.
    """
    from pyspark.sql import types as T

    if isinstance(spark_type, T.ArrayType):
        inner = spark_type.elementType
        while isinstance(inner, T.ArrayType):  # Postgres arrays are n-dimensional with one element type
            inner = inner.elementType
        if isinstance(inner, T.StringType):
            return None if column is None or column.array else "text[]"
        element = _ARRAY_ELEMENTS.get(type(inner).__name__, _UNSUPPORTED)
        return _UNSUPPORTED if element == _UNSUPPORTED else f"{element}[]"
    return _SCALARS.get(type(spark_type).__name__, _UNSUPPORTED)


#: What pgjdbc binds each Spark value as: Spark's setter for each type (setInt for bytes and shorts too).
_SCALARS: dict[str, str | None] = {
    "BooleanType": "boolean",
    "ByteType": "integer",
    "ShortType": "integer",
    "IntegerType": "integer",
    "LongType": "bigint",
    "FloatType": "real",
    "DoubleType": "double precision",
    "DecimalType": "numeric",
    "BinaryType": "bytea",
    "StringType": None,
    "DateType": None,
    "TimestampType": None,
    "TimestampNTZType": None,
}
#: Array elements: the element type name Spark's Postgres dialect gives createArrayOf (dates and timestamps
#: are typed in arrays, and bytes and shorts are smallint there).
_ARRAY_ELEMENTS: dict[str, str] = {
    **{name: bound for name, bound in _SCALARS.items() if bound is not None},
    "ByteType": "smallint",
    "ShortType": "smallint",
    "DateType": "date",
    "TimestampType": "timestamp with time zone",
    "TimestampNTZType": "timestamp",
}


def check_assignments(
    conn: psycopg.Connection[Any], info: TableInfo, schema: StructType, pairs: list[tuple[str, Column]]
) -> None:
    """Refuse, before a row moves, every column whose type Postgres would not assign Spark's parameter to.

    Postgres itself decides, with the rule it applies to Spark's own ``INSERT``: each typed column is
    prepared as ``INSERT INTO target (column) VALUES ($1::<what pgjdbc binds>)`` (nothing runs). So
    the writer takes exactly the (Spark type, column type) pairs Spark's writer takes, domains and
    custom types included, and names every column it refuses.
    """
    types = {f.name: f.dataType for f in schema.fields}
    typed = [
        (name, column, bound)
        for name, column in pairs
        if (bound := parameter_type(types[name], column)) is not None
    ]
    if not typed or _assignable(conn, info.name, [(c.name, p) for _, c, p in typed]):
        return
    refused = [
        (name, column, p) for name, column, p in typed if not _assignable(conn, info.name, [(column.name, p)])
    ]
    problems = "; ".join(
        f"column {name!r} ({types[name].simpleString()}) into {info.name}.{quote_identifier(column.name)} of "
        f"type {column.type}: Postgres has no assignment from {p} (what Spark's JDBC writer sends) to it"
        for name, column, p in refused
    )
    raise WriteInputError(
        f"{problems}. Spark's own JDBC writer is refused the same way; cast the column in Spark first "
        "(e.g. F.col(c).cast('string') for a text column); nothing was written"
    )


def _assignable(conn: psycopg.Connection[Any], table: TableName, columns: list[tuple[str, str]]) -> bool:
    """Whether Postgres prepares ``INSERT INTO table (columns) VALUES ($1::type, ...)`` (never run)."""
    from psycopg import errors

    statement = sql.SQL("PREPARE lakebase_spark_check AS INSERT INTO {} ({}) VALUES ({})").format(
        table.sql(),
        sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns),
        sql.SQL(", ").join(sql.SQL(f"${i}::{type_}") for i, (_, type_) in enumerate(columns, 1)),
    )
    try:
        with conn.transaction():  # rolled back either way: nothing is left prepared
            conn.execute(statement)
            conn.execute("DEALLOCATE lakebase_spark_check")
    except (errors.DatatypeMismatch, errors.CannotCoerce):
        return False
    return True
