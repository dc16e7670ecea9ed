"""Range sharding over Lakebase: a shard map, its stored global and local copies, and routing by key.

Typical use::

    from lakebase_spark.sharding import RangeShardMap, Shard, connect_for_key

    orders = RangeShardMap("orders", "bigint")
    orders.add_shard(Shard("eu", endpoint="projects/shop/branches/main/endpoints/eu", database="shop"))
    orders.add_shard(Shard("us", endpoint="projects/shop/branches/main/endpoints/us", database="shop"))
    orders.add_range(0, 1_000_000, "eu")
    orders.add_range(1_000_000, None, "us")
    with connect_for_key(orders, 1_234_567) as conn:  # the "us" shard
        conn.execute("SELECT ...")
"""

from __future__ import annotations

from .errors import (
    InvalidRangeError,
    InvalidShardMapError,
    KeyNotMappedError,
    KeyTypeError,
    MappingNotFoundError,
    MappingOfflineError,
    MappingValidationError,
    MissingDependencyError,
    RangeOverlapError,
    ShardConnectionError,
    ShardedReadError,
    ShardMapError,
    ShardMapNotFoundError,
    ShardMapVersionConflictError,
    UnknownShardError,
    UnroutableRowsError,
)
from .keys import (
    KEY_TYPES,
    TEXT_ORDER_NOTE,
    Key,
    KeyType,
    coerce_key,
    key_from_json,
    key_to_json,
    quote_identifier,
    range_predicate,
    sql_literal,
)
from .planning import PartitionRange, ReadRequest, ShardedReadPlan, SkippedRange, plan_sharded_read
from .reader import read_sharded
from .routing import connect_for_key, connect_shard
from .shard_map import ClippedRange, MappingStatus, RangeMapping, RangeShardMap, Shard
from .store import (
    GLOBAL_TABLE,
    LOCAL_TABLE,
    ShardMapCache,
    load_global,
    load_local,
    save_global,
    save_local,
    update_global,
    validate_local,
)
from .writer import ShardedWriteResult, write_sharded

__all__ = [
    "GLOBAL_TABLE",
    "KEY_TYPES",
    "LOCAL_TABLE",
    "TEXT_ORDER_NOTE",
    "ClippedRange",
    "InvalidRangeError",
    "InvalidShardMapError",
    "Key",
    "KeyNotMappedError",
    "KeyType",
    "KeyTypeError",
    "MappingNotFoundError",
    "MappingOfflineError",
    "MappingStatus",
    "MappingValidationError",
    "MissingDependencyError",
    "PartitionRange",
    "RangeMapping",
    "RangeOverlapError",
    "RangeShardMap",
    "ReadRequest",
    "Shard",
    "ShardConnectionError",
    "ShardMapCache",
    "ShardMapError",
    "ShardMapNotFoundError",
    "ShardMapVersionConflictError",
    "ShardedReadError",
    "ShardedReadPlan",
    "ShardedWriteResult",
    "SkippedRange",
    "UnknownShardError",
    "UnroutableRowsError",
    "coerce_key",
    "connect_for_key",
    "connect_shard",
    "key_from_json",
    "key_to_json",
    "load_global",
    "load_local",
    "plan_sharded_read",
    "quote_identifier",
    "range_predicate",
    "read_sharded",
    "save_global",
    "save_local",
    "sql_literal",
    "update_global",
    "validate_local",
    "write_sharded",
]
