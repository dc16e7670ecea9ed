"""Shared by the shard-map tests: small maps and shards, key constants, injection strings."""

from __future__ import annotations

import datetime
from typing import Any

from lakebase_spark.sharding import RangeShardMap, Shard

UTC = datetime.timezone.utc
PLUS5 = datetime.timezone(datetime.timedelta(hours=5))
MINUS8 = datetime.timezone(datetime.timedelta(hours=-8))
INSTANCE = "shardmap-instance"
DB_A, DB_B = "shardmap_a", "shardmap_b"
INJECTIONS = [
    "x'; DROP TABLE canary; --",
    "x\\'; DROP TABLE canary; --",
    "\\",
    "'",
    "''",
    "a\\nb",
    "$$; DROP TABLE canary; $$",
    "x' OR '1'='1",
    "?",
    "{fn now()}",
    '"C"',
]


def shard(name: str = "a", **kw: Any) -> Shard:
    kw.setdefault("endpoint", f"projects/p/branches/main/endpoints/{name}")
    return Shard(name, **kw)


def two_shard_map(key_type: str = "integer", name: str = "orders") -> RangeShardMap:
    return RangeShardMap(name, key_type, shards=[shard("a"), shard("b")])  # type: ignore[arg-type]
