"""Planning a sharded read (driver only, no Spark): prune the shard map to the key range, validate
mappings against their shards' local maps, estimate rows per range, spread the partitions over the
ranges in proportion and cut each range at its quantiles. Each shard's host is resolved once here,
and the plan carries it to the Spark side (:mod:`.reader`)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ..names import TableName
from ..postgres.connection import resolve_address
from ..serving.service import BrokerService, shared_broker_service
from ..targets import Address
from .balance import Distribution, allocate, cut_points
from .errors import MappingValidationError, ShardedReadError
from .keys import Key, KeyType, coerce_key, key_lt, range_predicate
from .routing import connect_shard
from .shard_map import ClippedRange, RangeMapping, RangeShardMap, Shard
from .statistics import check_key_column, fail_on_null_keys, key_distribution
from .store import ShardMapCache, validate_local

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

__all__ = [
    "PartitionRange",
    "ReadRequest",
    "ShardedReadPlan",
    "SkippedRange",
    "make_plan",
    "plan_sharded_read",
]

log = logging.getLogger(__name__)

OnInvalid = Literal["fail", "skip"]
NullKeys = Literal["exclude", "fail"]


@dataclass(frozen=True)
class ReadRequest:
    """What to read, checked once: the arguments of :func:`~.reader.read_sharded` minus the Spark
    session and the credentials."""

    table: TableName
    key: str
    key_range: tuple[object | None, object | None] | None = None
    partitions: int = 8
    validate: bool = False
    on_invalid: OnInvalid = "fail"
    null_keys: NullKeys = "exclude"
    shard_column: str | None = None

    def __post_init__(self) -> None:
        if self.on_invalid not in ("fail", "skip"):
            raise ShardedReadError(f"on_invalid must be 'fail' or 'skip', got {self.on_invalid!r}")
        if self.null_keys not in ("exclude", "fail"):
            raise ShardedReadError(f"null_keys must be 'exclude' or 'fail', got {self.null_keys!r}")
        if isinstance(self.partitions, bool) or not isinstance(self.partitions, int) or self.partitions < 1:
            raise ShardedReadError(f"partitions must be a whole number >= 1, got {self.partitions!r}")
        if not self.key or "\x00" in self.key:
            raise ShardedReadError(f"key must name the shard-key column, got {self.key!r}")


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

    table: TableName
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
    #: Where each touched shard's Postgres listens, resolved once while planning.
    addresses: dict[str, Address] = field(default_factory=dict)

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

    def _skipped_note(self) -> str:
        if not self.skipped:
            return ""
        return " (skipped: " + "; ".join(f"{s.mapping.id}: {s.reason}" for s in self.skipped) + ")"


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
    """Plan a sharded read (see :func:`~.reader.read_sharded`) without Spark: ranges, cuts, skips."""
    request = ReadRequest(
        TableName.parse(table), key, key_range, partitions, validate, on_invalid, null_keys, shard_column
    )
    service = broker.start() if broker is not None else shared_broker_service(workspace_client)
    return make_plan(shard_map, request, service)


def make_plan(
    shard_map: RangeShardMap | ShardMapCache, request: ReadRequest, service: BrokerService
) -> ShardedReadPlan:
    """Plan ``request``; with a :class:`ShardMapCache`, a failed validation reloads the map once."""
    cache = shard_map if isinstance(shard_map, ShardMapCache) else None
    current = cache.get() if cache is not None else shard_map
    assert isinstance(current, RangeShardMap)
    try:
        return _plan(current, request, service)
    except MappingValidationError:
        if cache is None:
            raise
        # The map may have changed since it was cached (a range moved): reload once and try again.
        log.info("shard map %r failed validation; reloading it and planning again", current.name)
        return _plan(cache.refresh(), request, service)


def _plan(shard_map: RangeShardMap, request: ReadRequest, service: BrokerService) -> ShardedReadPlan:
    table, key, on_invalid = request.table, request.key, request.on_invalid
    low, high = request.key_range or (None, None)
    low_key = coerce_key(shard_map.key_type, low) if low is not None else None
    high_key = coerce_key(shard_map.key_type, high) if high is not None else None
    if low_key is not None and high_key is not None and not key_lt(low_key, high_key):
        raise ShardedReadError(f"key_range low {low!r} must be below high {high!r}")
    clipped = shard_map.intersecting(low_key, high_key)
    plan = ShardedReadPlan(
        table=table,
        key=key,
        key_type=shard_map.key_type,
        partitions=[],
        unmapped=_unmapped(clipped, low_key, high_key),
        shards={name: shard.for_reads() for name, shard in shard_map.shards.items()},
        shard_column=request.shard_column,
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
        shard = plan.shards[name]  # on its read replica, if it names one
        address = resolve_address(service.broker, **shard.target.keywords())
        plan.addresses[name] = address
        with connect_shard(shard, broker=service, address=address) as conn:
            if request.validate:
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
            check_key_column(conn, shard, table, key, shard_map.key_type)
            if request.null_keys == "fail":
                fail_on_null_keys(conn, shard, table, key)
            dist = key_distribution(conn, table, key, shard_map.key_type, parts)
            plan.estimate_sources[name] = dist.source
            estimates.extend((part, dist.clip(part.low, part.high)) for part in parts)

    counts = allocate([d.rows for _, d in estimates], request.partitions)
    for (part, dist), count in zip(estimates, counts, strict=True):
        bounds: list[Key | None] = [part.low, *cut_points(dist, part.low, part.high, count), part.high]
        for a, b in itertools.pairwise(bounds):
            assert a is not None
            rows = dist.clip(a, b).rows if dist.keys else 0.0
            plan.partitions.append(PartitionRange(part.mapping.shard, part.mapping.id, a, b, rows))
    return plan


def _unmapped(
    clipped: Sequence[ClippedRange], low: Key | None, high: Key | None
) -> list[tuple[Key | None, Key | None]]:
    """The parts of ``[low, high)`` (None: unbounded) that no mapping covers."""
    if not clipped:
        return [(low, high)]
    gaps: list[tuple[Key | None, Key | None]] = []
    position: Key | None = low  # None only before the first part, when the range is unbounded below
    for part in clipped:
        if position is None or key_lt(position, part.low):
            gaps.append((position, part.low))
        if part.high is None:  # this mapping runs to +infinity: nothing is left above it
            return gaps
        position = part.high
    if high is None or (position is not None and key_lt(position, high)):
        gaps.append((position, high))
    return gaps
