"""How a jar-free read is split into Spark partitions, each an exact SQL predicate; together they cover
the relation once:

- **a table, by default: page ranges** (``ctid >= '(p,0)' AND ctid < '(q,0)'``, a TID range scan
  since Postgres 14). No key is needed, partitions hold about as many pages each, and the last one is
  open-ended, so pages added after planning are read too.
- **``partitionColumn``: key ranges** cut at the key's quantiles, from ``pg_stats`` when the table
  was analysed, else from a sample (the sharded reader's planner); the first and last ranges are
  open-ended and NULL keys go to the first partition. Any orderable column works (text, uuid, dates).
- **a query**: one partition, unless ``partitionColumn`` names one of its columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from pyspark.sql.datasource import InputPartition

from ..errors import LakebaseSparkError
from ..names import TableName, quote_identifier

if TYPE_CHECKING:
    import psycopg

__all__ = ["SqlPartition", "key_partitions", "page_partitions"]


class SqlPartition(InputPartition):
    """One Spark partition of a read: a predicate over the relation."""

    def __init__(self, index: int, predicate: str) -> None:
        self.index = index
        self.predicate = predicate


def page_partitions(conn: psycopg.Connection[Any], table: TableName, wanted: int) -> list[SqlPartition]:
    """Up to ``wanted`` ranges of the table's pages, as many pages each."""
    row = conn.execute(
        "SELECT greatest(relpages, (pg_relation_size(oid) / current_setting('block_size')::int)::int) "
        "FROM pg_class WHERE oid = to_regclass(%s)",
        (table.quoted(),),
    ).fetchone()
    pages = int(row[0]) if row and row[0] else 0
    count = max(1, min(wanted, pages))
    cuts = [pages * i // count for i in range(1, count)]
    bounds: list[tuple[int | None, int | None]] = list(zip([None, *cuts], [*cuts, None], strict=True))
    partitions = []
    for index, (low, high) in enumerate(bounds):
        conditions = []
        if low is not None:
            conditions.append(f"ctid >= '({low},0)'::tid")
        if high is not None:
            conditions.append(f"ctid < '({high},0)'::tid")
        partitions.append(SqlPartition(index, " AND ".join(conditions) or "TRUE"))
    return partitions


def key_partitions(
    conn: psycopg.Connection[Any], table: TableName, key: str, wanted: int
) -> list[SqlPartition]:
    """Up to ``wanted`` ranges of ``key`` holding about as many rows each (plus NULL keys in the first)."""
    from ..sharding.balance import cut_points
    from ..sharding.keys import KEY_TYPES, KeyType, sql_literal
    from ..sharding.model import ClippedRange
    from ..sharding.statistics import key_distribution

    row = conn.execute(
        "SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = to_regclass(%s) "
        "AND attname = %s AND NOT attisdropped AND attnum > 0",
        (table.quoted(), key),
    ).fetchone()
    if row is None:
        raise LakebaseSparkError(
            f"table {table} has no column {key!r} to partition by (option partitionColumn)"
        )
    names = {
        "timestamp without time zone": "timestamp",
        "timestamp with time zone": "timestamptz",
        "character varying": "text",
        "character": "text",
    }
    key_type = names.get(row[0], row[0])
    if key_type not in KEY_TYPES:
        raise LakebaseSparkError(
            f"column {key!r} of {table} is {row[0]}; partitionColumn takes {', '.join(KEY_TYPES)} (or "
            "leave it out: a table is split by pages)"
        )
    typed = cast("KeyType", key_type)
    low_row = conn.execute(f"SELECT min({quote_identifier(key)}) FROM {table.quoted()}").fetchone()  # noqa: S608
    if low_row is None or low_row[0] is None:
        return [SqlPartition(0, "TRUE")]
    from ..sharding.keys import coerce_key

    low = coerce_key(typed, low_row[0])
    whole = _Whole(low)
    dist = key_distribution(conn, table, key, typed, [cast(ClippedRange, whole)])
    cuts = cut_points(dist, low, None, wanted)
    column = quote_identifier(key)
    literals = [sql_literal(typed, c) for c in cuts]
    if key_type == "text":
        column += ' COLLATE "C"'  # the planner's order: bytes, as Spark compares strings
    partitions = []
    for index in range(len(literals) + 1):
        conditions = []
        if index > 0:
            conditions.append(f"{column} >= {literals[index - 1]}")
        if index < len(literals):
            conditions.append(f"{column} < {literals[index]}")
        predicate = " AND ".join(conditions)
        if index == 0:
            predicate = f"({predicate} OR {quote_identifier(key)} IS NULL)" if predicate else "TRUE"
        partitions.append(SqlPartition(index, predicate or "TRUE"))
    return partitions


@dataclass(frozen=True)
class _Whole:
    """The whole key range, in the shape the sharded planner's sampler reads (``low``, ``high``)."""

    low: Any
    high: Any = None
