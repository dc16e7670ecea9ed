"""Shard-aware reads: one DataFrame over a range-sharded Lakebase fleet, in balanced key ranges.

:mod:`.planning` (driver, psycopg with a broker token) decides the partitions; this module loads
them with Spark through the jar (the binary-COPY reader, or the JDBC reader over the ``lakebase``
provider: ``spark/readers.py``), one partition per predicate
``key >= a AND key < b``. Every predicate lies inside its mapping's range, so rows a shard still
holds outside its range (left behind by a move) are never read, and no row is read twice.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..names import TableName
from ..postgres.snapshots import DEFAULT_HOLD, SNAPSHOT, check_hold
from ..serving.service import BrokerService, default_workspace_client, shared_broker_service
from ..sessions import default_parallelism
from ..spark.options import lakebase_options
from ..spark.readers import check_reader, load_partitions
from ..targets import Address
from ..tokens.broker import TokenBroker
from .errors import ShardedReadError
from .planning import NullKeys, OnInvalid, ReadRequest, ShardedReadPlan, make_plan
from .shard_map import RangeShardMap, Shard
from .store import ShardMapCache

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["load_plan", "read_sharded"]


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
    jar_free: bool = False,
    reader: str = "copy",
    consistent: bool = False,
    hold: float = DEFAULT_HOLD,
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
    jar_free:
        Read each shard through ``format("lakebase")`` (Spark 4, no jar; see the README's "The jar-free
        path"); its credentials as ``source_options``' ``"auto"``.
    reader:
        With the jar, each shard's reader: ``"copy"`` (binary COPY into column vectors, the default)
        or ``"jdbc"``, as in ``lakebase_spark.read``.
    consistent, hold:
        Every partition of a shard sees that shard's snapshot, exported when the read is planned and
        held for ``hold`` seconds (see ``lakebase_spark.read``). Shards are separate databases: their
        snapshots are taken one after another, not at one moment across the fleet.
    """
    request = ReadRequest(
        TableName.parse(table),
        key,
        key_range,
        partitions if partitions is not None else default_parallelism(spark),  # 0 is refused, not defaulted
        validate,
        on_invalid,
        null_keys,
        shard_column,
    )
    if consistent:
        check_hold(hold)
    check_reader(reader)
    if jar_free:  # planning needs tokens, not a served broker: executors may not reach this process
        service = broker or BrokerService(TokenBroker(workspace_client or default_workspace_client()))
    else:
        service = broker.start() if broker is not None else shared_broker_service(workspace_client)
    planned = make_plan(shard_map, request, service)
    snapshots = _export(planned, service, hold) if consistent else {}
    df = load_plan(planned, spark, broker=service, jar_free=jar_free, snapshots=snapshots, reader=reader)
    return df.where(where) if where else df


def _export(planned: ShardedReadPlan, service: BrokerService, hold: float) -> dict[str, str]:
    """One snapshot per touched shard, held for ``hold`` seconds: shard name -> snapshot id."""
    from ..postgres.snapshots import export_snapshot

    ids = {}
    for name in planned.shards_touched:
        shard = planned.shards[name]
        snapshot = export_snapshot(
            **shard.target.keywords(),
            database=shard.database,
            hold=hold,
            broker=service,
            address=planned.addresses.get(name),
        )
        ids[name] = snapshot.id
    return ids


def load_plan(
    planned: ShardedReadPlan,
    spark: SparkSession,
    *,
    broker: BrokerService,
    jar_free: bool = False,
    snapshots: dict[str, str] | None = None,
    reader: str = "copy",
) -> DataFrame:
    """One DataFrame: each shard read with one partition per predicate, unioned by column name."""
    from pyspark.sql import functions as F

    if not planned.partitions:
        raise ShardedReadError(
            f"nothing to read from {planned.table}: no mapping of the shard map covers the "
            f"requested key range{planned._skipped_note()}"
        )
    frames: list[tuple[str, DataFrame]] = []
    for name in planned.shards_touched:
        shard = planned.shards[name]
        snapshot = {SNAPSHOT: snapshots[name]} if snapshots else {}
        if jar_free:
            from ..datasource import source_options
            from ..datasource.frames import load_predicates

            built = source_options(**shard.target.keywords(), database=shard.database, broker=broker)
            df = load_predicates(spark, planned.table, {**built, **snapshot}, planned.predicates(name))
        else:
            address = planned.addresses.get(name)
            df = load_partitions(
                spark,
                planned.table,
                {**shard_options(shard, broker, address), **snapshot},
                planned.predicates(name),
                reader=reader,
                connect=functools.partial(_connect, shard, broker, address),
                options={},
            )
        if planned.shard_column:
            df = df.withColumn(planned.shard_column, F.lit(name))
        frames.append((name, df))
    check_same_schema(frames)
    result = frames[0][1]
    for _, df in frames[1:]:
        result = result.unionByName(df)
    return result


def _connect(shard: Shard, broker: BrokerService, address: Address | None) -> Any:
    from ..postgres.connection import connect

    return connect(
        **shard.target.keywords(),
        database=shard.database,
        tokens=broker.broker,
        address=address,
        autocommit=True,
    )


def shard_options(shard: Shard, broker: BrokerService, address: Address | None = None) -> dict[str, str]:
    """The ``lakebase`` provider's options for one shard (``address``: its host, if already known)."""
    return dict(
        lakebase_options(**shard.target.keywords(), database=shard.database, broker=broker, address=address)
    )


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
