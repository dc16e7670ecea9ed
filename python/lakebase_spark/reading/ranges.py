"""How a read of one table is split into partitions, each an exact SQL predicate; together they cover
the table once (planned on the driver with one psycopg connection, for the JDBC and jar-free paths):

- **page ranges** (``ctid >= '(p,0)' AND ctid < '(q,0)'``, a TID range scan since Postgres 14): no key
  needed, about as many pages each, the last one open-ended so pages added after planning are read.
- **key ranges** of any orderable column (integers, numeric, text, uuid, dates, timestamps) cut at
  the key's quantiles, from ``pg_stats`` when the table was analysed, else from a sample (the sharded
  reader's planner); the first and last ranges are open-ended and NULL keys go to the first. Text
  is cut and compared in the column's own collation (cut points sorted by Postgres), so each range is
  an index range scan when the key has an index: ``COLLATE "C"`` would force every partition to scan
  the whole table, as no index of the column's collation serves it (even in a C database).
- **composite key ranges** of several such columns, compared as a row (``(a, b) >= (x, y)``), cut at
  the quantiles of a random sample of the key (Postgres keeps no statistics of column pairs); rows
  with a NULL in any key column go to the first range.

Spark's own ``partitionColumn`` takes numbers, dates and timestamps only, strides from
``lowerBound`` to ``upperBound`` whatever the data, and sends every row past the bounds to the first
or last partition; these ranges follow the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..errors import LakebaseSparkError
from ..names import TableName, quote_identifier

if TYPE_CHECKING:
    import psycopg

    from ..sharding.keys import KeyType

__all__ = ["PartitionKeyError", "composite_predicates", "key_predicates", "key_type", "page_predicates"]

#: Postgres type names (format_type) the planner reads as one of its key types.
_TYPE_NAMES = {
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "character varying": "text",
    "character": "text",
}


class PartitionKeyError(LakebaseSparkError, ValueError):
    """How a read was asked to be split cannot be done: a key column missing or not orderable into
    ranges, a column named twice, or a number of partitions below 1."""


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


def key_predicates(
    conn: psycopg.Connection[Any], table: TableName, key: str | Sequence[str], wanted: int
) -> list[str]:
    """Up to ``wanted`` ranges of ``key`` holding about as many rows each (plus NULL keys in the first).

    ``key`` may name several columns (a composite key): see :func:`composite_predicates`.
    """
    if not isinstance(key, str):
        columns = list(key)
        if not columns or not all(isinstance(c, str) and c for c in columns):
            raise PartitionKeyError(f"key must name a column or a sequence of columns, got {key!r}")
        if len(set(columns)) != len(columns):
            raise PartitionKeyError(f"key names a column twice: {key!r}")
        if len(columns) > 1:
            return composite_predicates(conn, table, columns, wanted)
        key = columns[0]
    from ..sharding.balance import Distribution, cut_points
    from ..sharding.model import ClippedRange
    from ..sharding.statistics import key_samples

    typed = key_type(conn, table, key)
    column = quote_identifier(key)
    points, source = key_samples(conn, table, key, typed, [cast("ClippedRange", _Whole(None))])
    if not points:
        return ["TRUE"]  # no rows (or only NULL keys) when planned: one open range
    # Ordered by Postgres, as the key's own type (text in the column's own collation, so each range is an
    # index range scan of the key's index; a COLLATE "C" predicate cannot use an index of the column's
    # collation, even in a C database): infinities, NaN and BC dates sort where the predicates put them.
    order = f"k COLLATE {_collation(conn, table, key)}" if typed == "text" else f"k::{typed}"
    ordered = conn.execute(
        f"SELECT k, w FROM unnest(%s::text[], %s::float8[]) AS u(k, w) ORDER BY {order}",  # noqa: S608
        ([k for k, _ in points], [w for _, w in points]),
    ).fetchall()
    ranked = Distribution.from_points([(i, w) for i, (_, w) in enumerate(ordered)], source)
    literals = [_literal(typed, ordered[cast(int, i)][0]) for i in cut_points(ranked, 0, None, wanted)]
    predicates = []
    for index in range(len(literals) + 1):
        conditions = []
        if index > 0:
            conditions.append(f"{column} >= {literals[index - 1]}")
        if index < len(literals):
            conditions.append(f"{column} < {literals[index]}")
        predicate = " AND ".join(conditions)
        if index == 0:
            predicate = f"({predicate} OR {column} IS NULL)" if predicate else "TRUE"
        predicates.append(predicate or "TRUE")
    return predicates


def _literal(typed: KeyType, value: str) -> str:
    """A value as Postgres wrote it, typed; text bare (quoted), so it takes the column's collation when
    compared with it."""
    from ..sharding.keys import quote_string

    return quote_string(value) if typed == "text" else f"{quote_string(value)}::{typed}"


def _collation(conn: psycopg.Connection[Any], table: TableName, column: str) -> str:
    """The column's collation, as SQL (``pg_catalog."default"`` for the database's)."""
    row = conn.execute(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.collname) FROM pg_attribute a "
        "JOIN pg_collation c ON c.oid = a.attcollation JOIN pg_namespace n ON n.oid = c.collnamespace "
        "WHERE a.attrelid = to_regclass(%s) AND a.attname = %s",
        (table.quoted(), column),
    ).fetchone()
    return str(row[0]) if row else 'pg_catalog."default"'


def composite_predicates(
    conn: psycopg.Connection[Any], table: TableName, keys: Sequence[str], wanted: int
) -> list[str]:
    """Up to ``wanted`` ranges of the row ``(keys...)``, cut at a random sample's quantiles.

    Each range is ``ROW(a, b) >= ROW(x, y) AND ROW(a, b) < ROW(x2, y2)`` over keys without NULLs; a row
    comparison with a NULL member can be true, false or unknown depending on the other members, so rows
    with any NULL key column are taken out of every range and read by the first.
    """
    from ..sharding.balance import Distribution, cut_points
    from ..sharding.statistics import SAMPLE_ROWS

    types = [key_type(conn, table, k) for k in keys]
    columns = [quote_identifier(k) for k in keys]
    listed = ", ".join(columns)
    compared = f"ROW({listed})"  # in the columns' own collations, so an index on (keys...) serves it
    complete = " AND ".join(f"{c} IS NOT NULL" for c in columns)
    source = f"FROM {table.quoted()} WHERE {complete}"
    # One pass with a top-n heap, then sorted by Postgres in the row comparison's own order; values as
    # text, so that every value the columns hold (infinity, NaN, BC dates) arrives.
    sample = f"SELECT {listed} {source} ORDER BY random() LIMIT {SAMPLE_ROWS}"
    # Sorted by the sampled columns themselves (qualified: a bare name would sort by the text output
    # column of that name, '10' < '9'), in the row comparison's own order.
    as_text = ", ".join(f"s.{c}::text" for c in columns)
    by_value = ", ".join(f"s.{c}" for c in columns)
    conn.execute("SET DateStyle = ISO")
    rows = conn.execute(f"SELECT {as_text} FROM ({sample}) s ORDER BY {by_value}").fetchall()  # noqa: S608
    if not rows:
        return ["TRUE"]
    total = len(rows)
    if total == SAMPLE_ROWS:  # a capped sample stands for every row
        counted = conn.execute(f"SELECT count(*) {source}").fetchone()
        total = int(counted[0]) if counted else total
    weight = total / len(rows)
    # Each distinct sampled row by its rank in that order: the one-column balancer cuts ranks.
    ranks: list[int] = []
    for i, row in enumerate(rows):
        ranks.append(ranks[-1] if i and row == rows[i - 1] else i)
    dist = Distribution.from_points([(r, weight) for r in ranks], "sample")
    cuts = [rows[cast(int, r)] for r in cut_points(dist, 0, None, wanted)]
    literals = [
        "ROW(" + ", ".join(_literal(t, v) for t, v in zip(types, cut, strict=True)) + ")" for cut in cuts
    ]
    predicates = []
    for index in range(len(literals) + 1):
        conditions = [] if index == 0 else [complete]
        if index > 0:
            conditions.append(f"{compared} >= {literals[index - 1]}")
        if index < len(literals):
            conditions.append(f"{compared} < {literals[index]}")
        predicate = " AND ".join(conditions) or "TRUE"
        if index == 0 and literals:
            predicate = f"({predicate} OR NOT ({complete}))"
        predicates.append(predicate)
    return predicates


@dataclass(frozen=True)
class _Whole:
    """The whole key range, in the shape the sharded planner's sampler reads (``low``, ``high``)."""

    low: Any
    high: Any = None
