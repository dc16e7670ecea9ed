"""Shard-aware reads: one DataFrame over a range-sharded Lakebase fleet, in balanced key ranges.

Planning (driver, psycopg with a broker token) prunes the shard map to the requested key range,
optionally validates each mapping against its shard's local map, estimates each range's rows from
``pg_stats`` (else a sample), spreads the partitions over the ranges in proportion, and cuts each
range at its quantiles. Loading (Spark, through the ``lakebase`` provider) reads one partition per
predicate ``key >= a AND key < b``. Every predicate lies inside its mapping's range, so rows a shard
still holds outside its range (left behind by a move) are never read, and no row is read twice.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from psycopg import sql

from ..options import lakebase_options
from ..service import BrokerService, shared_broker_service
from ..sessions import default_parallelism
from .balance import Distribution, allocate, cut_points
from .errors import MappingValidationError, ShardedReadError
from .keys import Key, KeyType, coerce_key, quote_identifier, range_predicate, sql_literal
from .routing import connect_shard
from .shard_map import ClippedRange, RangeMapping, RangeShardMap, Shard
from .store import ShardMapCache, validate_local

if TYPE_CHECKING:
    import psycopg
    from databricks.sdk import WorkspaceClient
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["PartitionRange", "ShardedReadPlan", "SkippedRange", "plan_sharded_read", "read_sharded"]

log = logging.getLogger(__name__)

OnInvalid = Literal["fail", "skip"]
NullKeys = Literal["exclude", "fail"]

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


@dataclass(frozen=True)
class PartitionRange:
    """One Spark partition: ``key >= low AND key < high`` on one shard (``high`` None: no upper bound)."""

    shard: str
    mapping_id: str
    low: Key
    high: Key | None
    estimated_rows: float


@dataclass(frozen=True)
class SkippedRange:
    """A mapping's key range left out of the read, and why."""

    mapping: RangeMapping
    reason: str


@dataclass
class ShardedReadPlan:
    """What a sharded read will do; :meth:`load` runs it."""

    table: tuple[str, str]
    key: str
    key_type: KeyType
    partitions: list[PartitionRange]
    skipped: list[SkippedRange] = field(default_factory=list)
    #: Parts of the requested key range that no mapping covers (no shard owns them).
    unmapped: list[tuple[Key | None, Key | None]] = field(default_factory=list)
    #: Where each shard's estimate came from ("pg_stats", "sample", "none").
    estimate_sources: dict[str, str] = field(default_factory=dict)
    shards: dict[str, Shard] = field(default_factory=dict)
    shard_column: str | None = None

    @property
    def shards_touched(self) -> list[str]:
        return sorted({p.shard for p in self.partitions})

    def predicates(self, shard: str) -> list[str]:
        """The exact SQL predicate of each of ``shard``'s partitions (key quoted, values as literals)."""
        return [
            range_predicate(self.key_type, self.key, p.low, p.high)
            for p in self.partitions
            if p.shard == shard
        ]

    def load(self, spark: SparkSession, *, broker: BrokerService) -> DataFrame:
        """One DataFrame: each shard read with one partition per predicate, unioned by column name."""
        from pyspark.sql import functions as F

        if not self.partitions:
            raise ShardedReadError(
                f"nothing to read from {'.'.join(self.table)}: no mapping of the shard map covers the "
                f"requested key range{self._skipped_note()}"
            )
        frames: list[tuple[str, DataFrame]] = []
        for name in self.shards_touched:
            shard = self.shards[name]
            opts = dict(shard_options(shard, broker))
            url = opts.pop("url")
            df = spark.read.jdbc(
                url, quote_table(self.table), predicates=self.predicates(name), properties=opts
            )
            if self.shard_column:
                df = df.withColumn(self.shard_column, F.lit(name))
            frames.append((name, df))
        check_same_schema(frames)
        result = frames[0][1]
        for _, df in frames[1:]:
            result = result.unionByName(df)
        return result

    def _skipped_note(self) -> str:
        if not self.skipped:
            return ""
        return " (skipped: " + "; ".join(f"{s.mapping.id}: {s.reason}" for s in self.skipped) + ")"


def read_sharded(
    spark: SparkSession,
    shard_map: RangeShardMap | ShardMapCache,
    *,
    table: str | tuple[str, str],
    key: str,
    where: str | None = None,
    key_range: tuple[object | None, object | None] | None = None,
    partitions: int | None = None,
    validate: bool = False,
    on_invalid: OnInvalid = "fail",
    null_keys: NullKeys = "exclude",
    shard_column: str | None = None,
    broker: BrokerService | None = None,
    workspace_client: WorkspaceClient | None = None,
) -> DataFrame:
    """Read ``table`` from every shard the key range touches, as one DataFrame.

    Parameters
    ----------
    table, key:
        ``"schema.table"`` (or a ``(schema, table)`` tuple) present on every shard, and its shard-key
        column, whose type must match the map's key type. Identifiers are quoted, never pasted.
    where:
        An extra Spark filter applied after loading (Spark pushes simple ones down to Postgres).
    key_range:
        ``(low, high)``: read keys ``low <= key < high`` only (``None`` = unbounded); shards whose
        ranges do not intersect it are not touched at all.
    partitions:
        Total Spark partitions (default: the session's default parallelism), spread over the
        ranges by estimated rows and cut at quantiles of the key's distribution.
    validate, on_invalid:
        Check each mapping against its shard's local map (present, same bounds, online) before
        reading; a failure raises (``"fail"``) or leaves that range out (``"skip"``; see the
        plan's ``skipped``). Offline mappings follow ``on_invalid`` whether or not ``validate`` is on.
        With a :class:`ShardMapCache`, a failed validation reloads the global map once and re-plans.
    null_keys:
        Rows whose key is NULL belong to no range and are not read (``"exclude"``), or make the read
        fail (``"fail"``) so they cannot go unnoticed.
    shard_column:
        Add a column with each row's shard name.
    """
    plan = plan_sharded_read(
        shard_map,
        table=table,
        key=key,
        key_range=key_range,
        partitions=partitions or default_parallelism(spark),
        validate=validate,
        on_invalid=on_invalid,
        null_keys=null_keys,
        shard_column=shard_column,
        broker=broker,
        workspace_client=workspace_client,
    )
    service = broker.start() if broker is not None else shared_broker_service(workspace_client)
    df = plan.load(spark, broker=service)
    return df.where(where) if where else df


def plan_sharded_read(
    shard_map: RangeShardMap | ShardMapCache,
    *,
    table: str | tuple[str, str],
    key: str,
    key_range: tuple[object | None, object | None] | None = None,
    partitions: int = 8,
    validate: bool = False,
    on_invalid: OnInvalid = "fail",
    null_keys: NullKeys = "exclude",
    shard_column: str | None = None,
    broker: BrokerService | None = None,
    workspace_client: WorkspaceClient | None = None,
) -> ShardedReadPlan:
    """Plan a sharded read (see :func:`read_sharded`) without Spark: ranges, cuts, skipped ranges."""
    if on_invalid not in ("fail", "skip"):
        raise ValueError(f"on_invalid must be 'fail' or 'skip', got {on_invalid!r}")
    if null_keys not in ("exclude", "fail"):
        raise ValueError(f"null_keys must be 'exclude' or 'fail', got {null_keys!r}")
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions!r}")
    if not key or "\x00" in key:
        raise ShardedReadError(f"key must name the shard-key column, got {key!r}")
    schema_table = parse_table(table)
    service = broker.start() if broker is not None else shared_broker_service(workspace_client)
    cache = shard_map if isinstance(shard_map, ShardMapCache) else None
    current = cache.get() if cache is not None else shard_map
    assert isinstance(current, RangeShardMap)
    args = (schema_table, key, key_range, partitions, validate, on_invalid, null_keys, shard_column, service)
    try:
        return _plan(current, *args)
    except MappingValidationError:
        if cache is None:
            raise
        # The map may have changed since it was cached (a range moved): reload once and try again.
        log.info("shard map %r failed validation; reloading it and planning again", current.name)
        return _plan(cache.refresh(), *args)


def _plan(
    shard_map: RangeShardMap,
    table: tuple[str, str],
    key: str,
    key_range: tuple[object | None, object | None] | None,
    partitions: int,
    validate: bool,
    on_invalid: OnInvalid,
    null_keys: NullKeys,
    shard_column: str | None,
    service: BrokerService,
) -> ShardedReadPlan:
    low, high = key_range or (None, None)
    low_key = coerce_key(shard_map.key_type, low) if low is not None else None
    high_key = coerce_key(shard_map.key_type, high) if high is not None else None
    if low_key is not None and high_key is not None and not low_key < high_key:  # type: ignore[operator]
        raise ShardedReadError(f"key_range low {low!r} must be below high {high!r}")
    clipped = shard_map.intersecting(low_key, high_key)
    plan = ShardedReadPlan(
        table=table,
        key=key,
        key_type=shard_map.key_type,
        partitions=[],
        unmapped=_unmapped(clipped, low_key, high_key),
        shards=dict(shard_map.shards),
        shard_column=shard_column,
    )

    def reject(mapping: RangeMapping, reason: str) -> None:
        if on_invalid == "fail":
            raise MappingValidationError(
                f"shard map {shard_map.name!r}: mapping {mapping.id} [{mapping.low!r}, {mapping.high!r}) "
                f"on shard {mapping.shard!r} {reason}; pass on_invalid='skip' to read without it"
            )
        log.warning("sharded read skips mapping %s on shard %s: %s", mapping.id, mapping.shard, reason)
        plan.skipped.append(SkippedRange(mapping, reason))

    by_shard: dict[str, list[ClippedRange]] = {}
    for part in clipped:
        if part.mapping.status != "online":
            reject(part.mapping, f"is {part.mapping.status}")
            continue
        by_shard.setdefault(part.mapping.shard, []).append(part)

    estimates: list[tuple[ClippedRange, Distribution]] = []
    for name, parts in by_shard.items():
        shard = shard_map.shards[name]
        with connect_shard(shard, broker=service) as conn:
            if validate:
                kept = []
                for part in parts:
                    try:
                        validate_local(conn, shard_map, part.mapping)
                    except MappingValidationError as e:
                        reject(part.mapping, f"failed validation: {e}")
                    else:
                        kept.append(part)
                parts = kept
            if not parts:
                continue
            _check_column(conn, shard, table, key, shard_map.key_type)
            if null_keys == "fail":
                _fail_on_null_keys(conn, shard, table, key)
            dist = _distribution(conn, table, key, shard_map.key_type, parts)
            plan.estimate_sources[name] = dist.source
            estimates.extend((part, dist.clip(part.low, part.high)) for part in parts)

    counts = allocate([d.rows for _, d in estimates], partitions)
    for (part, dist), count in zip(estimates, counts, strict=True):
        bounds: list[Key | None] = [part.low, *cut_points(dist, part.low, part.high, count), part.high]
        for a, b in itertools.pairwise(bounds):
            assert a is not None
            rows = dist.clip(a, b).rows if dist.keys else 0.0
            plan.partitions.append(PartitionRange(part.mapping.shard, part.mapping.id, a, b, rows))
    return plan


def shard_options(shard: Shard, broker: BrokerService) -> dict[str, str]:
    """The ``lakebase`` provider's options for one shard."""
    return dict(lakebase_options(**shard.target.keywords(), database=shard.database, broker=broker))


def check_same_schema(frames: Sequence[tuple[str, DataFrame]]) -> None:
    """Every shard's table must have the same columns and types (nullability may differ)."""
    first_name, first = frames[0]
    expected = {f.name: f.dataType.simpleString() for f in first.schema.fields}
    for name, df in frames[1:]:
        got = {f.name: f.dataType.simpleString() for f in df.schema.fields}
        if got != expected:
            missing = sorted(set(expected) - set(got))
            extra = sorted(set(got) - set(expected))
            changed = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
            details = "; ".join(
                part
                for part in (
                    f"missing {missing}" if missing else "",
                    f"extra {extra}" if extra else "",
                    ", ".join(f"{k}: {expected[k]} vs {got[k]}" for k in changed),
                )
                if part
            )
            raise ShardedReadError(
                f"shards {first_name!r} and {name!r} hold different schemas for the table ({details}); "
                "align the tables (or read a view with the common columns) before a sharded read"
            )


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


def _unmapped(
    clipped: Sequence[ClippedRange], low: Key | None, high: Key | None
) -> list[tuple[Key | None, Key | None]]:
    """The parts of ``[low, high)`` (None: unbounded) that no mapping covers."""
    if not clipped:
        return [(low, high)]
    gaps: list[tuple[Key | None, Key | None]] = []
    position, unbounded_below = low, low is None
    for part in clipped:
        if unbounded_below or position < part.low:  # type: ignore[operator]
            gaps.append((position, part.low))
        unbounded_below, position = False, part.high
        if position is None:  # this mapping runs to +infinity: nothing is left above it
            return gaps
    if high is None or position < high:  # type: ignore[operator]
        gaps.append((position, high))
    return gaps


def _check_column(
    conn: psycopg.Connection[Any], shard: Shard, table: tuple[str, str], key: str, key_type: KeyType
) -> None:
    row = conn.execute(
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s AND column_name = %s",
        (table[0], table[1], key),
    ).fetchone()
    if row is None:
        exists = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s", table
        ).fetchone()
        if exists is None:
            raise ShardedReadError(
                f"shard {shard.name!r} (database {shard.database!r}) has no table {quote_table(table)} "
                "visible to the current principal"
            )
        raise ShardedReadError(
            f"table {quote_table(table)} on shard {shard.name!r} has no column {key!r} to shard by"
        )
    if row[0] not in COLUMN_TYPES[key_type]:
        raise ShardedReadError(
            f"column {key!r} of {quote_table(table)} on shard {shard.name!r} is {row[0]}, but the shard "
            f"map's keys are {key_type}: use a map of key type matching the column"
        )


def _fail_on_null_keys(conn: psycopg.Connection[Any], shard: Shard, table: tuple[str, str], key: str) -> None:
    query = sql.SQL("SELECT count(*) FROM {}.{} WHERE {} IS NULL").format(
        sql.Identifier(table[0]), sql.Identifier(table[1]), sql.Identifier(key)
    )
    row = conn.execute(query).fetchone()
    nulls = int(row[0]) if row else 0
    if nulls:
        raise ShardedReadError(
            f"{nulls} rows of {quote_table(table)} on shard {shard.name!r} have a NULL {key!r}, which maps "
            "to no shard; fix them, or pass null_keys='exclude' to read without them"
        )


def _distribution(
    conn: psycopg.Connection[Any],
    table: tuple[str, str],
    key: str,
    key_type: KeyType,
    parts: Sequence[ClippedRange],
) -> Distribution:
    """The key's distribution on this shard: pg_stats (MCVs + histogram), else a sample of the ranges."""
    array = sql.SQL(f"{key_type}[]")  # key_type is one of a fixed set of type names
    stats = conn.execute(
        sql.SQL(
            "SELECT s.null_frac, (s.most_common_vals::text)::{array}, s.most_common_freqs, "
            "(s.histogram_bounds::text)::{array}, c.reltuples "
            "FROM pg_stats s JOIN pg_namespace n ON n.nspname = s.schemaname "
            "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename "
            "WHERE s.schemaname = %s AND s.tablename = %s AND s.attname = %s"
        ).format(array=array),
        (table[0], table[1], key),
    ).fetchone()
    if stats is not None and stats[4] and stats[4] > 0:
        null_frac, mcv, mcf, bounds, reltuples = stats
        points: list[tuple[Key, float]] = []
        mcv_share = 0.0
        for value, freq in zip(mcv or [], mcf or [], strict=True):
            points.append((coerce_key(key_type, value), float(freq) * reltuples))
            mcv_share += float(freq)
        if bounds and len(bounds) > 1:
            per_bucket = max(1.0 - null_frac - mcv_share, 0.0) * reltuples / (len(bounds) - 1)
            points.extend((coerce_key(key_type, b), per_bucket) for b in bounds[:-1])
            points.append((coerce_key(key_type, bounds[-1]), 0.0))
        if points:
            return Distribution.from_points(points, "pg_stats")
    # No statistics yet (never analyzed, and we may not own the table to ANALYZE it): a random sample
    # of each range's keys. ORDER BY random() LIMIT n scans the range once with a top-n heap.
    sampled: list[tuple[Key, float]] = []
    for part in parts:
        conditions = [
            sql.SQL("{} >= ").format(sql.Identifier(key)) + sql.SQL(sql_literal(key_type, part.low))
        ]
        if part.high is not None:
            conditions.append(
                sql.SQL("{} < ").format(sql.Identifier(key)) + sql.SQL(sql_literal(key_type, part.high))
            )
        where = sql.SQL("FROM {s}.{t} WHERE {cond}").format(
            s=sql.Identifier(table[0]),
            t=sql.Identifier(table[1]),
            cond=sql.SQL(" AND ").join(conditions),
        )
        query = sql.SQL("SELECT {k} {where} ORDER BY random() LIMIT {n}").format(
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
        sampled.extend((coerce_key(key_type, k), weight) for k in keys)
    return Distribution.from_points(sampled, "sample" if sampled else "none")
