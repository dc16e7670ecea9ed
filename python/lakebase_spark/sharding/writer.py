"""Sharded writes: route each row of a DataFrame to the shard whose range holds its key.

Every row is checked before anything is written: a row whose key is NULL, falls in no mapping, or
falls in an offline mapping makes the whole write fail with the count and a few example keys. Then
each shard gets one Spark JDBC write (through the ``lakebase`` provider) of exactly its rows.
"""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..service import BrokerService, shared_broker_service
from .errors import ShardMapError, UnroutableRowsError
from .keys import Key
from .reader import parse_table, quote_table, shard_options
from .shard_map import RangeMapping, RangeShardMap
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


def write_sharded(
    df: DataFrame,
    shard_map: RangeShardMap | ShardMapCache,
    *,
    table: str | tuple[str, str],
    key: str,
    mode: str = "append",
    options: dict[str, str] | None = None,
    broker: BrokerService | None = None,
    workspace_client: WorkspaceClient | None = None,
) -> ShardedWriteResult:
    """Write each row of ``df`` to ``table`` on the shard that owns its ``key``.

    ``mode`` is Spark's save mode, applied per shard (``overwrite`` replaces each written shard's
    table). ``options`` are extra Spark JDBC options (e.g. ``{"truncate": "true"}``). Raises
    :class:`UnroutableRowsError` before writing anything if any row has no online shard.
    """
    from pyspark.sql import functions as F

    current = shard_map.get() if isinstance(shard_map, ShardMapCache) else shard_map
    if key not in df.columns:
        raise ShardMapError(f"the DataFrame has no column {key!r} to route by (columns: {df.columns})")
    target = parse_table(table)
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
        service = broker.start() if broker is not None else shared_broker_service(workspace_client)
        written: dict[str, int] = {}
        for shard_name in sorted({m.shard for m in online}):
            mappings = [m for m in online if m.shard == shard_name]
            condition = functools.reduce(lambda a, b: a | b, (_in_range(key, m) for m in mappings))
            part = routed.where(condition)
            count = part.count()
            if count == 0 and mode == "append":
                continue
            opts = {**shard_options(current.shards[shard_name], service), **(options or {})}
            part.write.format("jdbc").options(**opts).option("dbtable", quote_table(target)).mode(mode).save()
            written[shard_name] = count
            log.info("sharded write: %d rows to shard %s", count, shard_name)
        return ShardedWriteResult(written)
    finally:
        routed.unpersist()


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
