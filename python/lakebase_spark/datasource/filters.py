"""Spark filters as exact Postgres SQL, for ``pushFilters``: a filter is pushed only where Postgres
gives the same answer as Spark, else Spark keeps it.

- integers, double precision, numeric, booleans and dates compare as in Spark;
- text, varchar and name: equality as is, order and ranges under ``COLLATE "C"`` (Spark compares
  strings by their UTF-8 bytes), prefixes, suffixes and substrings by position; ``char(n)`` is never
  pushed (Postgres ignores its padding, Spark does not);
- NULL tests on any column; ``NOT``, ``IN`` and ``<=>`` of the above;
- not pushed: real (Spark would compare the float), timestamps (time zones), arrays, and every type
  read as its text (uuid, json...), whose text order is not the type's.

Postgres and Spark share three-valued logic, so ``NOT`` of a pushed filter is pushed as is.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from psycopg import sql

from ..names import quote_identifier

if TYPE_CHECKING:
    from pyspark.sql.datasource import Filter

    from .columns import ReadColumn

__all__ = ["filter_sql"]

_INTEGERS = {"int2", "int4", "int8"}
_TEXTS = {"text", "varchar", "name"}


def filter_sql(spark_filter: Filter, columns: Mapping[str, ReadColumn]) -> str | None:
    """The filter as a Postgres condition with the same result for every row, or None."""
    from pyspark.sql import datasource as ds

    f = spark_filter
    if isinstance(f, ds.Not):
        inner = filter_sql(f.child, columns)
        return None if inner is None else f"NOT ({inner})"
    column = _column(f, columns)
    if column is None:
        return None
    name = quote_identifier(column.name)
    if isinstance(f, ds.IsNull):
        return f"{name} IS NULL"
    if isinstance(f, ds.IsNotNull):
        return f"{name} IS NOT NULL"
    if isinstance(f, ds.In):
        literals = [_literal(v, column) for v in f.value if v is not None]
        values = [v for v in literals if v is not None]
        if len(values) != len(literals) or not values:
            return None
        nulls = " OR NULL" if any(v is None for v in f.value) else ""  # x IN (a, NULL): true or NULL
        return f"({name} IN ({', '.join(values)}){nulls})"
    value = _literal(getattr(f, "value", None), column)
    if value is None:
        return None
    text = column.pg_type in _TEXTS
    if isinstance(f, ds.EqualTo):
        return f"{name} = {value}"
    if isinstance(f, ds.EqualNullSafe):
        return f"{name} IS NOT DISTINCT FROM {value}"
    ordered = f'{name} COLLATE "C"' if text else name
    compare = {
        ds.GreaterThan: ">",
        ds.GreaterThanOrEqual: ">=",
        ds.LessThan: "<",
        ds.LessThanOrEqual: "<=",
    }
    op = next((op for kind, op in compare.items() if isinstance(f, kind)), None)
    if op is not None:
        return f"{ordered} {op} {value}"
    if text and isinstance(f, ds.StringStartsWith):
        return f"starts_with({name}, {value})"
    if text and isinstance(f, ds.StringEndsWith):
        return f"right({name}, length({value})) = {value}"
    if text and isinstance(f, ds.StringContains):
        return f"strpos({name}, {value}) > 0"
    return None


def _column(f: Filter, columns: Mapping[str, ReadColumn]) -> ReadColumn | None:
    path = getattr(f, "attribute", None)
    if not isinstance(path, tuple) or len(path) != 1:
        return None  # a nested field
    column = columns.get(path[0])
    if column is None or column.array or column.pg_type == "":
        return None
    return column


def _literal(value: Any, column: ReadColumn) -> str | None:
    """``value`` as a SQL literal of the column's type, where the comparison is Spark's own."""
    kind = column.pg_type
    fits = (
        (kind in _INTEGERS and isinstance(value, int) and not isinstance(value, bool))
        or (kind == "float8" and isinstance(value, int | float) and not isinstance(value, bool))
        or (kind == "numeric" and isinstance(value, int | Decimal) and not isinstance(value, bool))
        or (kind == "bool" and isinstance(value, bool))
        or (kind == "date" and isinstance(value, datetime.date) and not isinstance(value, datetime.datetime))
        or (kind in _TEXTS and isinstance(value, str) and "\x00" not in value)
    )
    if not fits:
        return None
    literal = sql.Literal(value).as_string(None)
    return f"{literal}::{kind}" if kind in _INTEGERS | {"float8"} else literal
