"""How a read of one table is split into partitions, each an exact SQL predicate; together they cover
the table once (planned on the driver with one psycopg connection, for the JDBC and jar-free paths):

- **page ranges** (``ctid >= '(p,0)' AND ctid < '(q,0)'``, a TID range scan since Postgres 14): no key
  needed, about as many pages each, the last one open-ended so pages added after planning are read.
- **key ranges** of any orderable column (integers, numeric, text, uuid, dates, timestamps) cut at
  the key's quantiles, from ``pg_stats`` when the table was analysed, else from a sample (the sharded
  reader's planner); the first and last ranges are open-ended and NULL keys go to the first. Text
  compares under ``COLLATE "C"`` (bytes, as Spark orders strings), so the ranges do not depend on the
  database's collation.

Spark's own ``partitionColumn`` takes numbers, dates and timestamps only, strides from
``lowerBound`` to ``upperBound`` whatever the data, and sends every row past the bounds to the first
or last partition; these ranges follow the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..errors import LakebaseSparkError
from ..names import TableName, quote_identifier

if TYPE_CHECKING:
    import psycopg

    from ..sharding.keys import KeyType

__all__ = ["PartitionKeyError", "key_predicates", "key_type", "page_predicates"]

#: Postgres type names (format_type) the planner reads as one of its key types.
_TYPE_NAMES = {
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "character varying": "text",
    "character": "text",
}


class PartitionKeyError(LakebaseSparkError, ValueError):
    """The column named to partition a read by is missing or cannot be ordered into ranges."""


def page_predicates(conn: psycopg.Connection[Any], table: TableName, wanted: int) -> list[str]:
    """Up to ``wanted`` ranges of the table's pages, as many pages each."""
    row = conn.execute(
        "SELECT greatest(relpages, (pg_relation_size(oid) / current_setting('block_size')::int)::int) "
        "FROM pg_class WHERE oid = to_regclass(%s)",
        (table.quoted(),),
    ).fetchone()
    pages = int(row[0]) if row and row[0] else 0
    count = max(1, min(wanted, pages))
    cuts = [pages * i // count for i in range(1, count)]
    predicates = []
    for low, high in zip([None, *cuts], [*cuts, None], strict=True):
        conditions = []
        if low is not None:
            conditions.append(f"ctid >= '({low},0)'::tid")
        if high is not None:
            conditions.append(f"ctid < '({high},0)'::tid")
        predicates.append(" AND ".join(conditions) or "TRUE")
    return predicates


def key_type(conn: psycopg.Connection[Any], table: TableName, key: str) -> KeyType:
    """The planner's type of column ``key`` of ``table``, or a :class:`PartitionKeyError`."""
    from ..sharding.keys import KEY_TYPES

    row = conn.execute(
        "SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = to_regclass(%s) "
        "AND attname = %s AND NOT attisdropped AND attnum > 0",
        (table.quoted(), key),
    ).fetchone()
    if row is None:
        raise PartitionKeyError(f"table {table} has no column {key!r} to partition the read by")
    name = _TYPE_NAMES.get(row[0], row[0])
    if name not in KEY_TYPES:
        raise PartitionKeyError(
            f"column {key!r} of {table} is {row[0]}; reads partition by {', '.join(KEY_TYPES)} (or leave "
            "the key out: a table is split by pages)"
        )
    return cast("KeyType", name)


def key_predicates(conn: psycopg.Connection[Any], table: TableName, key: str, wanted: int) -> list[str]:
    """Up to ``wanted`` ranges of ``key`` holding about as many rows each (plus NULL keys in the first)."""
    from ..sharding.balance import cut_points
    from ..sharding.keys import coerce_key, sql_literal
    from ..sharding.model import ClippedRange
    from ..sharding.statistics import key_distribution

    typed = key_type(conn, table, key)
    column = quote_identifier(key)
    compared = column + (' COLLATE "C"' if typed == "text" else "")  # the planner's order: bytes
    # ORDER BY, not min(): Postgres 15 has no min(uuid), and text's least key must be the byte-wise one.
    low_row = conn.execute(
        f"SELECT {column} FROM {table.quoted()} WHERE {column} IS NOT NULL ORDER BY {compared} LIMIT 1"  # noqa: S608
    ).fetchone()
    if low_row is None:
        return ["TRUE"]
    low = coerce_key(typed, low_row[0])
    dist = key_distribution(conn, table, key, typed, [cast("ClippedRange", _Whole(low))])
    literals = [sql_literal(typed, c) for c in cut_points(dist, low, None, wanted)]
    predicates = []
    for index in range(len(literals) + 1):
        conditions = []
        if index > 0:
            conditions.append(f"{compared} >= {literals[index - 1]}")
        if index < len(literals):
            conditions.append(f"{compared} < {literals[index]}")
        predicate = " AND ".join(conditions)
        if index == 0:
            predicate = f"({predicate} OR {column} IS NULL)" if predicate else "TRUE"
        predicates.append(predicate or "TRUE")
    return predicates


@dataclass(frozen=True)
class _Whole:
    """The whole key range, in the shape the sharded planner's sampler reads (``low``, ``high``)."""

    low: Any
    high: Any = None
