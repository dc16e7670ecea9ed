"""One checked version of a range shard map's content: what :class:`.RangeShardMap` swaps in whole on
every change, and the checks it passes first."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, cast

from .errors import InvalidRangeError, InvalidShardMapError, RangeOverlapError, UnknownShardError
from .keys import Key, key_lt
from .model import RangeMapping, Shard, show_key

__all__ = ["MapState", "build_state", "unknown_shard"]


@dataclass(frozen=True)
class MapState:
    """One consistent version of a map; replaced whole by every mutation, never changed in place."""

    version: int
    shards: Mapping[str, Shard]
    mappings: tuple[RangeMapping, ...]  # sorted by low
    lows: tuple[Key, ...]  # mappings' lows, for bisect


def build_state(
    map_name: str,
    coerce: Callable[[object], Key],
    version: int,
    shards: Iterable[Shard],
    mappings: Iterable[RangeMapping],
) -> MapState:
    """The map's content checked in full (shards unique by name and database; ranges non-empty, on
    known shards, unique ids, not overlapping), keys coerced to the map's type: else an error naming
    the map, the offender and the fix."""
    by_name: dict[str, Shard] = {}
    by_location: dict[tuple[str, str, str], str] = {}
    for shard in shards:
        if not isinstance(shard, Shard):
            raise InvalidShardMapError(f"shard map {map_name!r}: expected Shard, got {shard!r}")
        if shard.name in by_name:
            raise InvalidShardMapError(
                f"shard map {map_name!r} already has a shard named {shard.name!r}; pick another name"
            )
        other = by_location.get(shard.location)
        if other is not None:
            raise InvalidShardMapError(
                f"shards {other!r} and {shard.name!r} of shard map {map_name!r} are the same database "
                f"({shard.location[0]} {shard.location[1]!r}, database {shard.database!r}); "
                "a database can hold one shard of a map: use one shard with several ranges"
            )
        by_name[shard.name] = shard
        by_location[shard.location] = shard.name
    checked: list[RangeMapping] = []
    ids: set[str] = set()
    for m in mappings:
        if not isinstance(m, RangeMapping):
            raise InvalidShardMapError(f"shard map {map_name!r}: expected RangeMapping, got {m!r}")
        m = replace(m, low=coerce(m.low), high=None if m.high is None else coerce(m.high))
        if m.high is not None and not key_lt(m.low, m.high):
            raise InvalidRangeError(
                f"range [{show_key(m.low)}, {show_key(m.high)}) (id {m.id}) of shard map {map_name!r} "
                "is empty: low must be below high (high is exclusive; None means unbounded)"
            )
        if m.shard not in by_name:
            raise unknown_shard(map_name, m.shard, by_name)
        if m.id in ids:
            raise InvalidShardMapError(
                f"shard map {map_name!r} has two mappings with id {m.id!r}; ids must be unique"
            )
        ids.add(m.id)
        checked.append(m)
    checked.sort(key=lambda m: cast(Any, m.low))
    for before, after in itertools.pairwise(checked):
        if before.high is None or key_lt(after.low, before.high):
            raise RangeOverlapError(
                f"range {after.describe()} overlaps {before.describe()} in shard map {map_name!r}; "
                "ranges are half-open [low, high): remove, split or shrink the existing range first"
            )
    return MapState(
        version=version,
        shards=MappingProxyType(by_name),
        mappings=tuple(checked),
        lows=tuple(m.low for m in checked),
    )


def unknown_shard(map_name: str, name: str, shards: Mapping[str, Shard]) -> UnknownShardError:
    known = ", ".join(repr(s) for s in sorted(shards)) or "none"
    return UnknownShardError(
        f"shard map {map_name!r} has no shard {name!r} (shards: {known}); add it with add_shard(Shard(...))"
    )
