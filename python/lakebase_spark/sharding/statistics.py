"""Catalog look-ups on one shard for planning: the key column's type, NULL keys, and the key's
distribution (``pg_stats`` when the table was analysed, else a sample weighed by each range's rows),
read as text so that every value Postgres allows arrives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from psycopg import sql

from ..names import TableName
from .balance import Distribution
from .errors import KeyTypeError, ShardedReadError
from .keys import Key, KeyType, coerce_key, sql_literal
from .shard_map import ClippedRange, Shard

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "COLUMN_TYPES",
    "SAMPLE_ROWS",
    "check_key_column",
    "fail_on_null_keys",
    "key_distribution",
    "key_samples",
]

#: information_schema.columns.data_type values accepted for each key type.
COLUMN_TYPES: dict[KeyType, tuple[str, ...]] = {
    "smallint": ("smallint",),
    "integer": ("integer",),
    "bigint": ("bigint",),
    "numeric": ("numeric",),
    "date": ("date",),
    "timestamp": ("timestamp without time zone",),
    "timestamptz": ("timestamp with time zone",),
    "text": ("text", "character varying", "character"),
    "uuid": ("uuid",),
}
#: Keys to sample per range when a table has no statistics (Postgres' own ANALYZE reads 30,000 rows).
SAMPLE_ROWS = 20_000


def check_key_column(
    conn: psycopg.Connection[Any], shard: Shard, table: TableName, key: str, key_type: KeyType
) -> None:
    """The shard's table has the key column, of a type matching the shard map's keys."""
    row = conn.execute(
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s AND column_name = %s",
        (table.schema, table.name, key),
    ).fetchone()
    if row is None:
        exists = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            (table.schema, table.name),
        ).fetchone()
        if exists is None:
            raise ShardedReadError(
                f"shard {shard.name!r} (database {shard.database!r}) has no table {table} "
                "visible to the current principal"
            )
        raise ShardedReadError(f"table {table} on shard {shard.name!r} has no column {key!r} to shard by")
    if row[0] not in COLUMN_TYPES[key_type]:
        raise ShardedReadError(
            f"column {key!r} of {table} on shard {shard.name!r} is {row[0]}, but the shard "
            f"map's keys are {key_type}: use a map of key type matching the column"
        )


def fail_on_null_keys(conn: psycopg.Connection[Any], shard: Shard, table: TableName, key: str) -> None:
    query = sql.SQL("SELECT count(*) FROM {}.{} WHERE {} IS NULL").format(
        sql.Identifier(table.schema), sql.Identifier(table.name), sql.Identifier(key)
    )
    row = conn.execute(query).fetchone()
    nulls = int(row[0]) if row else 0
    if nulls:
        raise ShardedReadError(
            f"{nulls} rows of {table} on shard {shard.name!r} have a NULL {key!r}, which maps "
            "to no shard; fix them, or pass null_keys='exclude' to read without them"
        )


def key_distribution(
    conn: psycopg.Connection[Any],
    table: TableName,
    key: str,
    key_type: KeyType,
    parts: Sequence[ClippedRange],
) -> Distribution:
    """The key's distribution on this shard as shard keys (:func:`key_samples`, coerced). Values no shard
    key can be (infinities, NaN, dates before year 1) are left out of the estimate; their rows are still
    read, by the ranges open towards them."""
    points, source = key_samples(conn, table, key, key_type, parts)
    keys: list[tuple[Key, float]] = []
    for text, weight in points:
        try:
            keys.append((coerce_key(key_type, text), weight))
        except KeyTypeError:
            continue
    return Distribution.from_points(keys, source if keys else "none")


def key_samples(
    conn: psycopg.Connection[Any],
    table: TableName,
    key: str,
    key_type: KeyType,
    parts: Sequence[ClippedRange],
) -> tuple[list[tuple[str, float]], str]:
    """Representative values of the key as Postgres writes them, each with the rows it stands for, and
    where they came from: ``pg_stats`` (most common values and histogram bounds) when the table was
    analysed, else a random sample of each range in ``parts`` (``"sample"``; ``"none"`` without rows).

    Values travel as text, so every value the column can hold arrives, ``infinity``, ``NaN`` and BC
    dates included (psycopg cannot load those into Python values); compare them in SQL.
    """
    conn.execute("SET DateStyle = ISO")  # values written as text come back as the ISO the casts read
    stats = conn.execute(
        "SELECT s.null_frac, (s.most_common_vals::text)::text[], s.most_common_freqs, "
        "(s.histogram_bounds::text)::text[], c.reltuples "
        "FROM pg_stats s JOIN pg_namespace n ON n.nspname = s.schemaname "
        "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename "
        "WHERE s.schemaname = %s AND s.tablename = %s AND s.attname = %s",
        (table.schema, table.name, key),
    ).fetchone()
    if stats is not None and stats[4] and stats[4] > 0:
        null_frac, mcv, mcf, bounds, reltuples = stats
        points: list[tuple[str, float]] = []
        mcv_share = 0.0
        for value, freq in zip(mcv or [], mcf or [], strict=True):
            points.append((value, float(freq) * reltuples))
            mcv_share += float(freq)
        if bounds and len(bounds) > 1:
            per_bucket = max(1.0 - null_frac - mcv_share, 0.0) * reltuples / (len(bounds) - 1)
            points.extend((b, per_bucket) for b in bounds[:-1])
            points.append((bounds[-1], 0.0))
        if points:
            return _merged(points), "pg_stats"
    # No statistics yet (never analyzed, and we may not own the table to ANALYZE it): a random sample
    # of each range's keys. ORDER BY random() LIMIT n scans the range once with a top-n heap.
    sampled: list[tuple[str, float]] = []
    for part in parts:
        conditions = [sql.SQL("{} IS NOT NULL").format(sql.Identifier(key))]
        if part.low is not None:  # None: from the least key (a single table's read, not a shard's range)
            conditions.append(
                sql.SQL("{} >= ").format(sql.Identifier(key)) + sql.SQL(sql_literal(key_type, part.low))
            )
        if part.high is not None:
            conditions.append(
                sql.SQL("{} < ").format(sql.Identifier(key)) + sql.SQL(sql_literal(key_type, part.high))
            )
        where = sql.SQL("FROM {s}.{t} WHERE {cond}").format(
            s=sql.Identifier(table.schema),
            t=sql.Identifier(table.name),
            cond=sql.SQL(" AND ").join(conditions),
        )
        query = sql.SQL("SELECT {k}::text {where} ORDER BY random() LIMIT {n}").format(
            k=sql.Identifier(key), where=where, n=sql.Literal(SAMPLE_ROWS)
        )
        keys = [row[0] for row in conn.execute(query)]
        # A full sample is the whole range (weight 1 per row); a capped one stands for every row of the
        # range, so each sampled key weighs rows / sample size: ranges of 80k and 10k rows must not
        # both look like 20k.
        total = len(keys)
        if total == SAMPLE_ROWS:
            counted = conn.execute(sql.SQL("SELECT count(*) {where}").format(where=where)).fetchone()
            total = int(counted[0]) if counted else total
        weight = total / len(keys) if keys else 0.0
        sampled.extend((k, weight) for k in keys)
    return _merged(sampled), "sample" if sampled else "none"


def _merged(points: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """One entry per value (as written), its weights summed."""
    merged: dict[str, float] = {}
    for value, weight in points:
        merged[value] = merged.get(value, 0.0) + weight
    return list(merged.items())
