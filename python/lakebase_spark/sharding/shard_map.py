"""A range shard map: half-open key ranges ``[low, high)`` mapped to shards (Lakebase databases); its
parts are in :mod:`.model`, its file format in :mod:`.documents`.

Data-dependent routing in the style of Azure's Elastic Database client (``RangeShardMap``), with what it
lacks: every key type checked and ordered exactly as Postgres orders it, gaps reported, ranges pruned and
clipped to a requested key range, and a map that is a plain JSON document (or YAML) under version control.
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

from . import documents
from ._states import MapState, build_state, unknown_shard
from .documents import MapDocument
from .errors import (
    InvalidRangeError,
    InvalidShardMapError,
    KeyNotMappedError,
    MappingNotFoundError,
    MappingOfflineError,
)
from .keys import Key, KeyType, check_key_type, coerce_key, key_lt
from .model import ClippedRange, MappingStatus, RangeMapping, Shard, check_name, show_key

__all__ = ["ClippedRange", "MappingStatus", "RangeMapping", "RangeShardMap", "Shard"]


class RangeShardMap:
    """Ranges of one key mapped to shards; validated on every change, thread-safe, JSON round-trippable.

    Parameters
    ----------
    name:
        The map's name (1 to 63 of ``[A-Za-z0-9_-]``): its key in the stored global and local maps.
    key_type:
        The Postgres type of the key column, one of :data:`KEY_TYPES`. Keys given to any method are
        coerced to it (:func:`coerce_key`), e.g. ``"2026-01-01"`` for a ``date`` map.
    shards, mappings:
        The initial shards and ranges. Everything is checked: unknown shards, overlapping or empty
        ranges, duplicate ids, names and locations.
    version:
        Bumped by one by every mutation that changes the map; stored maps use it for optimistic
        concurrency (:func:`save_global`'s ``expected_version``).

    Ranges are half-open, ``[low, high)``; ``high=None`` is unbounded above. Keys below the first range,
    between ranges and above a bounded last range are gaps (:meth:`gaps`): looking them up raises
    :class:`KeyNotMappedError`.
    """

    def __init__(
        self,
        name: str,
        key_type: KeyType,
        *,
        shards: Iterable[Shard] = (),
        mappings: Iterable[RangeMapping] = (),
        version: int = 1,
    ) -> None:
        self._name = check_name("shard map name", name)
        self._key_type = check_key_type(key_type)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidShardMapError(f"shard map {name!r}: version must be an int >= 1, got {version!r}")
        # Mutations build a new MapState and swap it in under _lock; readers take self._state once and
        # so always see one consistent version without locking.
        self._lock = threading.RLock()
        self._state = build_state(self._name, self.coerce, version, shards, mappings)

    # -- reading ------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_type(self) -> KeyType:
        return self._key_type

    @property
    def version(self) -> int:
        return self._state.version

    @property
    def shards(self) -> Mapping[str, Shard]:
        """The shards by name (read-only)."""
        return self._state.shards

    @property
    def mappings(self) -> Sequence[RangeMapping]:
        """The ranges, sorted by ``low``."""
        return self._state.mappings

    def __repr__(self) -> str:
        state = self._state
        return (
            f"RangeShardMap(name={self._name!r}, key_type={self._key_type!r}, version={state.version}, "
            f"shards={len(state.shards)}, mappings={len(state.mappings)})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RangeShardMap):
            return NotImplemented
        mine, theirs = self._state, other._state
        return (
            (self._name, self._key_type, mine.version) == (other._name, other._key_type, theirs.version)
            and dict(mine.shards) == dict(theirs.shards)
            and mine.mappings == theirs.mappings
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable (e.g. into Spark closures) although it holds a lock: rebuilt, and re-validated, on load.
        state = self._state
        return (
            _restore,
            (self._name, self._key_type, state.version, tuple(state.shards.values()), state.mappings),
        )

    def copy(self) -> RangeShardMap:
        """An independent map with the same content (cheap: states are immutable and shared)."""
        clone = RangeShardMap.__new__(RangeShardMap)
        clone._name, clone._key_type = self._name, self._key_type
        clone._lock = threading.RLock()
        clone._state = self._state
        return clone

    def coerce(self, key: object) -> Key:
        """``key`` as this map's key type (:func:`coerce_key`)."""
        return coerce_key(self._key_type, key)

    def mapping(self, mapping_id: str) -> RangeMapping:
        """The mapping with id ``mapping_id``; :class:`MappingNotFoundError` if there is none."""
        return self._find(self._state, mapping_id)

    def mapping_for_key(self, key: object) -> RangeMapping:
        """The mapping whose range contains ``key``, online or offline (the caller decides)."""
        k = self.coerce(key)
        state = self._state
        i = bisect.bisect_right(cast(Sequence[Any], state.lows), k) - 1
        if i >= 0 and state.mappings[i].contains(k):
            return state.mappings[i]
        below = state.mappings[i] if i >= 0 else None
        above = state.mappings[i + 1] if i + 1 < len(state.mappings) else None
        if below is None and above is None:
            where = "the map has no ranges yet"
        else:
            near = [
                f"{side} {m.describe()}"
                for side, m in (("below:", below), ("above:", above))
                if m is not None
            ]
            where = "the nearest ranges are " + "; ".join(near)
        raise KeyNotMappedError(
            f"key {show_key(k)} is in no range of shard map {self._name!r} ({self._key_type}): {where}. "
            "Add a range that covers it with add_range(low, high, shard)"
        )

    def shard_for_key(self, key: object) -> Shard:
        """The shard holding ``key``; :class:`MappingOfflineError` if its range is offline."""
        mapping = self.mapping_for_key(key)
        if mapping.status != "online":
            raise MappingOfflineError(
                f"key {show_key(self.coerce(key))} of shard map {self._name!r} is in range "
                f"{mapping.describe()}, which is offline; wait for the move or repair to finish, "
                f"or set_status({mapping.id!r}, 'online')"
            )
        return self._state.shards[mapping.shard]

    def intersecting(self, low: object | None = None, high: object | None = None) -> list[ClippedRange]:
        """The mappings that share keys with ``[low, high)``, clipped to it, sorted by ``low``.

        ``None`` leaves that side unbounded. Offline mappings are included (check ``mapping.status``).
        An empty request (``low >= high``) intersects nothing.
        """
        lo = None if low is None else self.coerce(low)
        hi = None if high is None else self.coerce(high)
        if lo is not None and hi is not None and not key_lt(lo, hi):
            return []
        state = self._state
        start = 0 if lo is None else max(bisect.bisect_right(cast(Sequence[Any], state.lows), lo) - 1, 0)
        found = []
        for m in state.mappings[start:]:
            if hi is not None and not key_lt(m.low, hi):
                break
            if lo is not None and m.high is not None and not key_lt(lo, m.high):
                continue
            clip_low = m.low if lo is None or key_lt(lo, m.low) else lo
            if m.high is None:
                clip_high = hi
            elif hi is None:
                clip_high = m.high
            else:
                clip_high = m.high if key_lt(m.high, hi) else hi
            found.append(ClippedRange(m, clip_low, clip_high))
        return found

    def gaps(self) -> list[tuple[Key | None, Key | None]]:
        """Key ranges no mapping covers, as ``(low, high)`` with ``None`` for unbounded, sorted."""
        mappings = self._state.mappings
        if not mappings:
            return [(None, None)]
        found: list[tuple[Key | None, Key | None]] = [(None, mappings[0].low)]
        for before, after in itertools.pairwise(mappings):
            assert before.high is not None  # only the last range can be unbounded (no overlaps)
            if key_lt(before.high, after.low):
                found.append((before.high, after.low))
        if mappings[-1].high is not None:
            found.append((mappings[-1].high, None))
        return found

    # -- changing -----------------------------------------------------------------------------------

    def add_shard(self, shard: Shard) -> Shard:
        """Register a shard (its name and its database must be new to the map)."""
        if not isinstance(shard, Shard):
            raise InvalidShardMapError(f"add_shard expects a Shard, got {type(shard).__name__}")
        with self._lock:
            state = self._state
            self._commit(state, [*state.shards.values(), shard], state.mappings)
        return shard

    def remove_shard(self, name: str) -> Shard:
        """Unregister a shard that holds no range."""
        with self._lock:
            state = self._state
            shard = self._shard(state, name)
            held = [m for m in state.mappings if m.shard == name]
            if held:
                raise InvalidShardMapError(
                    f"shard {name!r} still holds {len(held)} range(s) of shard map {self._name!r}, e.g. "
                    f"{held[0].describe()}; remove them or move_range() them to another shard first"
                )
            self._commit(state, [s for s in state.shards.values() if s.name != name], state.mappings)
        return shard

    def add_range(
        self,
        low: object,
        high: object | None,
        shard: str,
        *,
        status: MappingStatus = "online",
        id: str | None = None,
    ) -> RangeMapping:
        """Map ``[low, high)`` to ``shard`` (``high=None``: unbounded above); the range must be free."""
        mapping = RangeMapping(
            id if id is not None else str(uuid.uuid4()),
            self.coerce(low),
            None if high is None else self.coerce(high),
            shard,
            status,
        )
        with self._lock:
            state = self._state
            self._shard(state, shard)
            self._commit(state, state.shards.values(), (*state.mappings, mapping))
        return mapping

    def remove_range(self, mapping_id: str) -> RangeMapping:
        """Unmap a range: its keys become a gap."""
        with self._lock:
            state = self._state
            mapping = self._find(state, mapping_id)
            self._commit(state, state.shards.values(), [m for m in state.mappings if m.id != mapping_id])
        return mapping

    def set_status(self, mapping_id: str, status: MappingStatus) -> RangeMapping:
        """Take a range offline (e.g. while moving it) or bring it back online; same status: no change."""
        with self._lock:
            old = self._find(self._state, mapping_id)
            return self._replace(old, replace(old, status=status))

    def move_range(self, mapping_id: str, shard: str) -> RangeMapping:
        """Point a range at another shard (after its rows were copied there); the id stays."""
        with self._lock:
            old = self._find(self._state, mapping_id)
            self._shard(self._state, shard)
            return self._replace(old, replace(old, shard=shard))

    def _replace(self, old: RangeMapping, new: RangeMapping) -> RangeMapping:
        """Swap one mapping for a changed copy (lock held); an unchanged one changes nothing."""
        if new != old:
            state = self._state
            self._commit(state, state.shards.values(), [new if m is old else m for m in state.mappings])
        return new

    def split(self, mapping_id: str, at: object) -> tuple[RangeMapping, RangeMapping]:
        """Cut a range into ``[low, at)`` and ``[at, high)``: both keep shard and status, with new ids."""
        point = self.coerce(at)
        with self._lock:
            state = self._state
            old = self._find(state, mapping_id)
            if not (key_lt(old.low, point) and (old.high is None or key_lt(point, old.high))):
                raise InvalidRangeError(
                    f"cannot split {old.describe()} at {show_key(point)}: the split point must lie strictly "
                    "inside the range"
                )
            left = RangeMapping(str(uuid.uuid4()), old.low, point, old.shard, old.status)
            right = RangeMapping(str(uuid.uuid4()), point, old.high, old.shard, old.status)
            rest = [m for m in state.mappings if m.id != mapping_id]
            self._commit(state, state.shards.values(), [*rest, left, right])
        return left, right

    def merge(self, left_id: str, right_id: str) -> RangeMapping:
        """Join adjacent ranges (``left.high == right.low``) of one shard and status, under a new id."""
        with self._lock:
            state = self._state
            left, right = self._find(state, left_id), self._find(state, right_id)
            self._check_mergeable(left, right)
            merged = RangeMapping(str(uuid.uuid4()), left.low, right.high, left.shard, left.status)
            rest = [m for m in state.mappings if m.id not in (left_id, right_id)]
            self._commit(state, state.shards.values(), [*rest, merged])
        return merged

    def merge_adjacent(self) -> int:
        """Merge every run of adjacent ranges on one shard with one status; returns the number of merges."""
        with self._lock:
            state = self._state
            merged: list[RangeMapping] = []
            merges = 0
            for m in state.mappings:
                last = merged[-1] if merged else None
                if (
                    last is not None
                    and last.high is not None
                    and last.high == m.low
                    and (last.shard, last.status) == (m.shard, m.status)
                ):
                    merged[-1] = RangeMapping(str(uuid.uuid4()), last.low, m.high, m.shard, m.status)
                    merges += 1
                else:
                    merged.append(m)
            if merges:
                self._commit(state, state.shards.values(), merged)
        return merges

    def _check_mergeable(self, left: RangeMapping, right: RangeMapping) -> None:
        if left.high is None or left.high != right.low:
            hint = (
                "; they are in the wrong order: pass the lower range first"
                if right.high is not None and right.high == left.low
                else ""
            )
            raise InvalidRangeError(
                f"cannot merge {left.describe()} with {right.describe()}: they are not adjacent "
                f"(the first's high must equal the second's low){hint}"
            )
        if (left.shard, left.status) != (right.shard, right.status):
            raise InvalidRangeError(
                f"cannot merge {left.describe()} ({left.status}) with {right.describe()} ({right.status}): "
                "both must be on the same shard with the same status; move_range() or set_status() first"
            )

    # -- validation ---------------------------------------------------------------------------------

    def _commit(self, state: MapState, shards: Iterable[Shard], mappings: Iterable[RangeMapping]) -> None:
        """Validate the new content fully, then swap it in (lock held): a failure changes nothing."""
        self._state = build_state(self._name, self.coerce, state.version + 1, shards, mappings)

    def _shard(self, state: MapState, name: str) -> Shard:
        shard = state.shards.get(name)
        if shard is None:
            raise unknown_shard(self._name, name, state.shards)
        return shard

    def _find(self, state: MapState, mapping_id: str) -> RangeMapping:
        for m in state.mappings:
            if m.id == mapping_id:
                return m
        raise MappingNotFoundError(
            f"shard map {self._name!r} has no mapping with id {mapping_id!r}; "
            "list them with .mappings (ids change on split and merge)"
        )

    # -- documents (the format lives in .documents) ----------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The map as a JSON-ready document (keys in their lossless JSON form, :func:`key_to_json`)."""
        state = self._state  # one version: a concurrent edit replaces it whole
        parts = MapDocument(
            self._name, self._key_type, list(state.shards.values()), list(state.mappings), state.version
        )
        return documents.map_to_document(parts)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RangeShardMap:
        """The map a :meth:`to_dict` document (or a hand-written one) describes.

        Hand-written documents may leave out ``format``, ``version`` (1), a shard's ``database``,
        a mapping's ``high`` (unbounded), ``status`` (online) and ``id``: a missing id is derived from
        the map name and the range, so loading one file twice gives the same ids.
        """
        return cls._from_parts(documents.map_from_document(d))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> RangeShardMap:
        return cls._from_parts(documents.map_from_json(text))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RangeShardMap:
        """Read a map from a ``.json`` file, or ``.yaml``/``.yml`` (needs PyYAML)."""
        return cls._from_parts(documents.load_map(path))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the map as JSON (also valid YAML), atomically: readers see the old or the new file."""
        documents.save_map(self.to_json(), path)

    @classmethod
    def _from_parts(cls, parts: MapDocument) -> RangeShardMap:
        return cls(
            parts.name, parts.key_type, shards=parts.shards, mappings=parts.mappings, version=parts.version
        )


def _restore(
    name: str, key_type: KeyType, version: int, shards: tuple[Shard, ...], mappings: tuple[RangeMapping, ...]
) -> RangeShardMap:
    return RangeShardMap(name, key_type, shards=shards, mappings=mappings, version=version)
