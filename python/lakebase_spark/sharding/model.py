"""What a shard map is made of: shards (a database on a Lakebase endpoint or instance) and range
mappings ``[low, high)`` onto them, plus the names and messages they share. The map itself, with its
validation and edits, is :mod:`.shard_map`; its file format is :mod:`.documents`."""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from ..targets import DEFAULT_DATABASE, Target
from .errors import InvalidRangeError, InvalidShardMapError
from .keys import Key, key_lt

__all__ = [
    "STATUSES",
    "ClippedRange",
    "MappingStatus",
    "RangeMapping",
    "Shard",
    "check_fields",
    "check_name",
    "show_key",
]

MappingStatus = Literal["online", "offline"]
STATUSES: tuple[MappingStatus, ...] = get_args(MappingStatus)

_NAME = re.compile(r"[A-Za-z0-9_-]{1,63}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


def check_name(what: str, name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidShardMapError(
            f"invalid {what} {name!r}: use 1 to 63 letters, digits, '_' or '-' (e.g. 'orders-eu-1')"
        )
    return name


def check_fields(what: str, d: Mapping[str, Any], *, required: set[str], optional: set[str]) -> None:
    """A document entry has every ``required`` field and no field but those and ``optional``."""
    missing = sorted(required - d.keys())
    unknown = sorted(set(d.keys()) - required - optional)
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown {', '.join(map(str, unknown))}")
        raise InvalidShardMapError(
            f"{what} entry {dict(d)!r}: {'; '.join(problems)} "
            f"(fields: {', '.join(sorted(required | optional))})"
        )


def show_key(key: Key | None) -> str:
    """A key as messages print it: ISO dates and times, quoted text, ``unbounded`` for ``None``."""
    if key is None:
        return "unbounded"
    if isinstance(key, str):
        return repr(key)
    if isinstance(key, datetime.datetime):
        return key.isoformat(sep=" ")
    if isinstance(key, datetime.date):
        return key.isoformat()
    return str(key)


@dataclass(frozen=True)
class Shard:
    """A shard's home: a database of a Lakebase endpoint (Autoscaling) or instance (Provisioned)."""

    #: Unique in the map: 1 to 63 of ``[A-Za-z0-9_-]``.
    name: str
    database: str = DEFAULT_DATABASE
    #: A Lakebase Autoscaling endpoint, ``projects/<p>/branches/<b>/endpoints/<e>`` ...
    endpoint: str | None = None
    #: ... or a Lakebase Provisioned instance name: exactly one of the two.
    instance: str | None = None
    #: A read replica of ``endpoint`` (an endpoint of type READ_ONLY) that sharded reads use instead;
    #: writes and routing always go to ``endpoint``.
    read_endpoint: str | None = None

    def __post_init__(self) -> None:
        check_name("shard name", self.name)
        db = self.database
        if not isinstance(db, str) or not db or "\x00" in db or len(db.encode("utf-8")) > 63:
            raise InvalidShardMapError(
                f"shard {self.name!r}: invalid database name {db!r}: give a Postgres database name of "
                "1 to 63 bytes, e.g. 'databricks_postgres'"
            )
        if (self.endpoint is None) == (self.instance is None):
            raise InvalidShardMapError(
                f"shard {self.name!r} needs exactly one of "
                "endpoint='projects/<p>/branches/<b>/endpoints/<e>' (Lakebase Autoscaling) "
                "or instance='<name>' (Lakebase Provisioned)"
            )
        _ = self.target  # the name rules
        if self.read_endpoint is not None:
            if self.endpoint is None:
                raise InvalidShardMapError(
                    f"shard {self.name!r}: read_endpoint= is a read replica of an Autoscaling endpoint; "
                    "give endpoint= too"
                )
            Target.of(self.read_endpoint, None)

    @property
    def target(self) -> Target:
        """The endpoint or instance this shard's database lives on."""
        return Target.of(self.endpoint, self.instance)

    @property
    def location(self) -> tuple[str, str, str]:
        """What identifies the database itself: two shards of one map may not share it."""
        target = self.target
        return (target.kind, target.name, self.database)

    def for_reads(self) -> Shard:
        """This shard as sharded reads see it: on its read replica, if it names one."""
        if self.read_endpoint is None:
            return self
        return dataclasses.replace(self, endpoint=self.read_endpoint, read_endpoint=None)

    def to_dict(self) -> dict[str, str]:
        out = {"name": self.name, "database": self.database, self.target.kind: self.target.name}
        if self.read_endpoint is not None:
            out["read_endpoint"] = self.read_endpoint
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Shard:
        check_fields(
            "shard", d, required={"name"}, optional={"database", "endpoint", "instance", "read_endpoint"}
        )
        return cls(**dict(d))


@dataclass(frozen=True)
class RangeMapping:
    """The keys ``low <= key < high`` (``high=None``: no upper bound) live on ``shard``."""

    #: Stable id (a UUID string unless given): shards' local maps and the reader's validation name it.
    id: str
    low: Key
    high: Key | None
    shard: str
    #: ``offline`` while a range is moved or repaired: routing refuses it, the caller decides for reads.
    status: MappingStatus = "online"

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _ID.fullmatch(self.id):
            raise InvalidShardMapError(
                f"invalid mapping id {self.id!r}: use 1 to 128 letters, digits, '_', '.', ':' or '-' "
                "(or leave it out to get a UUID)"
            )
        check_name("shard name", self.shard)
        if self.status not in STATUSES:
            raise InvalidShardMapError(
                f"mapping {self.id!r}: invalid status {self.status!r}: use 'online' or 'offline'"
            )
        if self.low is None:
            raise InvalidRangeError(
                f"mapping {self.id!r}: low cannot be None; start the first range at the key type's "
                "smallest value instead"
            )

    def contains(self, key: Key) -> bool:
        """Whether the coerced ``key`` (see :func:`coerce_key`) is in ``[low, high)``."""
        return not key_lt(key, self.low) and (self.high is None or key_lt(key, self.high))

    def describe(self) -> str:
        """``[low, high) on shard 's' (id ...)``, as messages name a range."""
        return f"[{show_key(self.low)}, {show_key(self.high)}) on shard {self.shard!r} (id {self.id})"


@dataclass(frozen=True)
class ClippedRange:
    """A mapping cut to a requested key range: read ``low <= key < high`` from ``mapping.shard``."""

    mapping: RangeMapping
    #: ``max(mapping.low, requested low)``.
    low: Key
    #: ``min(mapping.high, requested high)``; ``None`` only if both are unbounded.
    high: Key | None

    @property
    def shard(self) -> str:
        return self.mapping.shard
