"""Sharded writes: route each row of a DataFrame to the shard whose range holds its key.

Every row is checked before anything is written: a row whose key is NULL, falls in no mapping, or
falls in an offline mapping makes the whole write fail with the count and a few example keys. Then
each shard gets one COPY write (:func:`lakebase_spark.write`) of exactly its rows, with the same
guarantees as any other write: exactly once per shard, atomic overwrite, reruns by write id.
"""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..names import TableName
from ..serving.service import BrokerService, default_workspace_client, shared_broker_service
from ..tokens.broker import TokenBroker
from ..writing.writer import Mode, write
from .errors import ShardMapError, UnroutableRowsError
from .keys import Key
from .shard_map import RangeMapping, RangeShardMap, Shard
from .store import ShardMapCache

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from pyspark.sql import Column, DataFrame

__all__ = ["ShardedWriteResult", "write_sharded"]

log = logging.getLogger(__name__)

#: How many offending keys an error shows.
EXAMPLES = 5


@dataclass(frozen=True)
class ShardedWriteResult:
    """Rows written per shard."""

    rows: dict[str, int]
    #: The write id of each shard's write (``<write_id>/<shard>``): rerun with the same ``write_id``.
    write_ids: dict[str, str]


def write_sharded(
    df: DataFrame,
    shard_map: RangeShardMap | ShardMapCache,
    *,
    table: str | tuple[str, str],
    key: str,
    mode: Mode = "append",
    upsert_key: str | list[str] | None = None,
    write_id: str | None = None,
    options: dict[str, str] | None = None,
    broker: BrokerService | None = None,
    workspace_client: WorkspaceClient | None = None,
    jar_free: bool = False,
) -> ShardedWriteResult:
    """Write each row of ``df`` to ``table`` on the shard that owns its ``key``.

    ``mode`` is applied per shard as in :func:`lakebase_spark.write` (``overwrite`` atomically replaces
    each written shard's table; ``upsert`` needs ``upsert_key``). ``write_id`` names the write for
    exactly-once reruns (each shard's part is ``<write_id>/<shard>``). ``options`` go to the writer's
    data source. Raises :class:`UnroutableRowsError` before writing anything if any row has no online
    shard. ``jar_free=True`` writes each shard through ``format("lakebase")`` (Spark 4, no jar); its
    ``rows`` are then the rows routed to each shard.
    """
    from pyspark.sql import functions as F

    current = shard_map.get() if isinstance(shard_map, ShardMapCache) else shard_map
    if key not in df.columns:
        raise ShardMapError(f"the DataFrame has no column {key!r} to route by (columns: {df.columns})")
    target = TableName.parse(table)
    online = [m for m in current.mappings if m.status == "online"]
    in_any = functools.reduce(lambda a, b: a | b, (_in_range(key, m) for m in online), F.lit(False))
    routed = df.persist()  # every shard's write and the check below see the same rows
    try:
        unroutable = routed.where(F.col(key).isNull() | ~in_any)
        bad = unroutable.count()
        if bad:
            examples = [row[0] for row in unroutable.select(key).limit(EXAMPLES).collect()]
            raise UnroutableRowsError(
                f"{bad} rows have a {key!r} that maps to no online shard of shard map {current.name!r} "
                f"(NULL, in a gap, or in an offline range), e.g. {examples}; nothing was written. Add "
                "ranges for them, bring their mappings online, or filter them out"
            )
        if jar_free:
            service = broker or BrokerService(TokenBroker(workspace_client or default_workspace_client()))
        else:
            service = broker.start() if broker is not None else shared_broker_service(workspace_client)
        base_id = write_id or uuid.uuid4().hex
        written: dict[str, int] = {}
        ids: dict[str, str] = {}
        for shard_name in sorted({m.shard for m in online}):
            mappings = [m for m in online if m.shard == shard_name]
            condition = functools.reduce(lambda a, b: a | b, (_in_range(key, m) for m in mappings))
            part = routed.where(condition)
            if mode in ("append", "upsert") and part.isEmpty():
                continue
            shard = current.shards[shard_name]
            ids[shard_name] = f"{base_id}/{shard_name}"
            if jar_free:
                written[shard_name] = _write_jar_free(
                    part, target, shard, mode, upsert_key, ids[shard_name], service
                )
                continue
            result = write(
                part,
                target,
                mode=mode,
                key=upsert_key,
                endpoint=shard.endpoint,
                instance=shard.instance,
                database=shard.database,
                write_id=ids[shard_name],
                broker=service,
                options=options,
            )
            written[shard_name] = result.rows
            log.info("sharded write: %d rows to shard %s", result.rows, shard_name)
        return ShardedWriteResult(written, ids)
    finally:
        routed.unpersist()


def _write_jar_free(
    part: DataFrame,
    target: TableName,
    shard: Shard,
    mode: Mode,
    upsert_key: str | list[str] | None,
    write_id: str,
    service: BrokerService,
) -> int:
    from ..datasource import source_options
    from ..datasource.frames import save

    rows = part.count()  # the routed rows are cached: what this shard is given
    built = source_options(**shard.target.keywords(), database=shard.database, broker=service)
    save(part, target, built, mode=mode, key=upsert_key, write_id=write_id)
    return rows


def _in_range(key: str, mapping: RangeMapping) -> Column:
    """Spark's ``low <= key < high``; Spark compares strings by UTF-8 bytes, like COLLATE "C"."""
    from pyspark.sql import functions as F

    column = F.col(key)
    condition = column >= F.lit(_spark_value(mapping.low))
    if mapping.high is not None:
        condition = condition & (column < F.lit(_spark_value(mapping.high)))
    return condition


def _spark_value(key: Key) -> Any:
    # Spark reads uuid columns as strings; canonical lower-case hex sorts like the uuid itself.
    return str(key) if isinstance(key, uuid.UUID) else key
