"""The range shard map and its parts (pure Python): routing, validation, edits, thread safety."""

from __future__ import annotations

import datetime
import pickle
import uuid
from decimal import Decimal
from typing import Any

import pytest

from lakebase_spark import (
    InvalidEndpointNameError,
)
from lakebase_spark.sharding import (
    KEY_TYPES,
    ClippedRange,
    InvalidRangeError,
    InvalidShardMapError,
    KeyNotMappedError,
    KeyTypeError,
    MappingNotFoundError,
    MappingOfflineError,
    RangeMapping,
    RangeOverlapError,
    RangeShardMap,
    Shard,
    UnknownShardError,
    coerce_key,
)

from ..concurrency import run_together
from ..shard_maps import PLUS5, UTC, shard, two_shard_map

# -- the model ------------------------------------------------------------------------------------------

# (below the first range, its low, just below the split, the split, far above) for every key type.
BOUNDARIES: dict[str, tuple[object, ...]] = {
    "smallint": (-101, -100, -1, 0, 32767),
    "integer": (-(2**31), -(2**31) + 1, 999, 1000, 2**31 - 1),
    "bigint": (-(2**63), -(2**63) + 1, 2**62 - 1, 2**62, 2**63 - 1),
    "numeric": (Decimal("-0.0001"), Decimal(0), Decimal("9.99999999999999999999"), 10, "1E+100"),
    "date": ("2025-12-31", "2026-01-01", datetime.date(2026, 1, 31), "2026-02-01", datetime.date.max),
    "timestamp": (
        datetime.datetime(2025, 12, 31, 23, 59, 59, 999999),
        "2026-01-01",
        "2026-01-01 00:00:00.999999",
        datetime.datetime(2026, 1, 1, 0, 0, 1),
        datetime.datetime.max,
    ),
    "timestamptz": (
        datetime.datetime(2026, 1, 1, 4, 59, 59, 999999, tzinfo=PLUS5),
        "2026-01-01T00:00:00Z",
        datetime.datetime(2026, 1, 1, 0, 59, 59, 999999, tzinfo=UTC),
        "2026-01-01T02:00:00+01:00",
        datetime.datetime(9999, 12, 31, 23, tzinfo=UTC),
    ),
    "text": ("Z", "a", "a\U0010ffff", "b", "über"),
    "uuid": (
        uuid.UUID(int=0),
        "00000000-0000-0000-0000-000000000001",
        "7fffffff-ffff-ffff-ffff-ffffffffffff",
        "80000000-0000-0000-0000-000000000000",
        uuid.UUID(int=2**128 - 1),
    ),
}


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_low_is_inclusive_high_exclusive_last_unbounded(key_type: Any) -> None:
    below, low, just_below, split, far = BOUNDARIES[key_type]
    m = two_shard_map(key_type)
    first = m.add_range(low, split, "a")
    second = m.add_range(split, None, "b")
    assert m.mapping_for_key(low) == first
    assert m.mapping_for_key(just_below) == first
    assert m.mapping_for_key(split) == second
    assert m.shard_for_key(far).name == "b"
    assert m.shard_for_key(just_below).name == "a"
    with pytest.raises(KeyNotMappedError):
        m.mapping_for_key(below)
    assert m.gaps() == [(None, coerce_key(key_type, low))]
    assert first.contains(coerce_key(key_type, low))
    assert not first.contains(coerce_key(key_type, split))


def test_negative_and_text_keys_route() -> None:
    m = two_shard_map("bigint")
    m.add_range(-1000, -10, "a")
    m.add_range(-10, 10, "b")
    assert m.shard_for_key(-11).name == "a"
    assert m.shard_for_key(-10).name == "b"
    assert m.shard_for_key("9").name == "b"
    with pytest.raises(KeyNotMappedError):
        m.shard_for_key(10)
    with pytest.raises(KeyTypeError):
        m.shard_for_key(True)

    t = two_shard_map("text")
    t.add_range("", "n", "a")
    t.add_range("n", None, "b")
    assert t.shard_for_key("O'Brien").name == "a"  # 'O' < 'n' by code point
    assert t.shard_for_key("nadie").name == "b"
    assert t.shard_for_key("Ñandú").name == "b"  # U+00D1 sorts after 'n' (U+006E), unlike in en_US
    assert t.shard_for_key("\U0001f600").name == "b"


def test_overlaps_are_rejected_and_leave_the_map_unchanged() -> None:
    m = two_shard_map()
    first = m.add_range(0, 100, "a")
    m.add_range(200, None, "b")
    before, version = m.to_dict(), m.version
    for low, high in [(50, 150), (-10, 1), (0, 100), (99, 101), (150, 201), (500, 600), (-5, None)]:
        with pytest.raises(RangeOverlapError) as caught:
            m.add_range(low, high, "b")
        message = str(caught.value)
        assert "overlaps" in message
        assert f"[{low}, " in message  # the new range ...
        assert "[0, 100)" in message or "[200, unbounded)" in message  # ... and the one it hits
    with pytest.raises(InvalidRangeError, match=r"\[150, 150\).*empty"):
        m.add_range(150, 150, "a")
    with pytest.raises(InvalidRangeError, match="empty"):
        m.add_range(170, 160, "a")
    with pytest.raises(UnknownShardError, match=r"no shard 'c' \(shards: 'a', 'b'\)"):
        m.add_range(100, 200, "c")
    with pytest.raises(InvalidShardMapError, match="two mappings with id"):
        m.add_range(100, 200, "a", id=first.id)
    with pytest.raises(KeyTypeError):
        m.add_range("x", 200, "a")
    assert m.to_dict() == before
    assert m.version == version
    m.add_range(100, 200, "a")  # the gap is free: fits exactly between the two
    assert m.version == version + 1
    assert m.gaps() == [(None, 0)]


def test_constructor_validates_everything() -> None:
    a, b = shard("a"), shard("b")
    ok = RangeMapping("m1", 0, 10, "a")
    with pytest.raises(UnknownShardError):
        RangeShardMap("m", "integer", shards=[a], mappings=[RangeMapping("m2", 0, 10, "zz")])
    with pytest.raises(RangeOverlapError, match="m1"):
        RangeShardMap("m", "integer", shards=[a], mappings=[ok, RangeMapping("m2", 5, 20, "a")])
    with pytest.raises(InvalidShardMapError, match="two mappings"):
        RangeShardMap("m", "integer", shards=[a], mappings=[ok, RangeMapping("m1", 10, 20, "a")])
    with pytest.raises(InvalidShardMapError, match="already has a shard named 'a'"):
        RangeShardMap("m", "integer", shards=[a, a])
    with pytest.raises(InvalidShardMapError, match="same database"):
        RangeShardMap("m", "integer", shards=[a, Shard("a2", endpoint=a.endpoint)])
    with pytest.raises(InvalidRangeError):
        RangeShardMap("m", "integer", shards=[a], mappings=[RangeMapping("m1", 10, 10, "a")])
    with pytest.raises(InvalidShardMapError, match="version"):
        RangeShardMap("m", "integer", version=0)
    with pytest.raises(InvalidShardMapError, match="shard map name"):
        RangeShardMap("bad name", "integer")
    # Keys given raw are coerced to the key type; the same database name on another endpoint is fine.
    m = RangeShardMap(
        "m",
        "date",
        shards=[a, b, Shard("c", endpoint=a.endpoint, database="other")],
        mappings=[
            RangeMapping("z", "2026-02-01", None, "b"),
            RangeMapping("y", "2026-01-01", "2026-02-01", "a"),
        ],
    )
    assert [x.id for x in m.mappings] == ["y", "z"]
    assert m.mappings[0].low == datetime.date(2026, 1, 1)
    with pytest.raises(TypeError):
        m.shards["d"] = shard("d")  # type: ignore[index]


def test_shard_and_mapping_validation() -> None:
    with pytest.raises(InvalidShardMapError, match="exactly one of"):
        Shard("a")
    with pytest.raises(InvalidShardMapError, match="exactly one of"):
        Shard("a", endpoint="projects/p/branches/b/endpoints/e", instance="i")
    with pytest.raises(InvalidEndpointNameError):
        Shard("a", endpoint="p/b/e")
    with pytest.raises(InvalidEndpointNameError):
        Shard("a", instance="bad instance")
    with pytest.raises(InvalidShardMapError, match="shard name"):
        Shard("a" * 64, instance="i")
    with pytest.raises(InvalidShardMapError, match="database"):
        Shard("a", instance="i", database="")
    with pytest.raises(InvalidShardMapError, match="status"):
        RangeMapping("x", 0, 1, "a", "paused")  # type: ignore[arg-type]
    with pytest.raises(InvalidShardMapError, match="mapping id"):
        RangeMapping("has space", 0, 1, "a")
    assert Shard("a", instance="i").database == "databricks_postgres"


def test_gaps() -> None:
    m = two_shard_map()
    assert m.gaps() == [(None, None)]
    m.add_range(10, 20, "a")
    m.add_range(20, 30, "b")
    m.add_range(40, 50, "a")
    assert m.gaps() == [(None, 10), (30, 40), (50, None)]
    m.add_range(50, None, "b")
    assert m.gaps() == [(None, 10), (30, 40)]


def test_split_merge_and_merge_adjacent() -> None:
    m = two_shard_map()
    whole = m.add_range(0, 100, "a", status="offline")
    v = m.version
    left, right = m.split(whole.id, 40)
    assert (left.low, left.high, right.low, right.high) == (0, 40, 40, 100)
    assert {left.shard, right.shard} == {"a"}
    assert {left.status, right.status} == {"offline"}
    assert len({whole.id, left.id, right.id}) == 3
    assert m.version == v + 1
    with pytest.raises(MappingNotFoundError, match=whole.id):
        m.mapping(whole.id)
    before = m.to_dict()
    for at in (0, 40, 100, -1):
        with pytest.raises(InvalidRangeError, match="strictly inside"):
            m.split(left.id, at)
    with pytest.raises(InvalidRangeError, match="wrong order"):
        m.merge(right.id, left.id)
    assert m.to_dict() == before
    merged = m.merge(left.id, right.id)
    assert (merged.low, merged.high, merged.status) == (0, 100, "offline")
    assert m.mappings == (merged,)

    m.set_status(merged.id, "online")
    a1, rest = m.split(merged.id, 10)
    a2, rest = m.split(rest.id, 20)
    a3, b1 = m.split(rest.id, 30)
    m.move_range(b1.id, "b")
    far = m.add_range(200, None, "a")  # not adjacent to the others
    with pytest.raises(InvalidRangeError, match="same shard"):
        m.merge(a3.id, b1.id)
    with pytest.raises(InvalidRangeError, match="not adjacent"):
        m.merge(b1.id, far.id)
    v = m.version
    assert m.merge_adjacent() == 2  # a1+a2+a3; b1 and far stay
    assert m.version == v + 1
    assert [(x.low, x.high, x.shard) for x in m.mappings] == [(0, 30, "a"), (30, 100, "b"), (200, None, "a")]
    assert m.merge_adjacent() == 0
    assert m.version == v + 1
    assert a1.id not in {x.id for x in m.mappings}
    assert a2.id not in {x.id for x in m.mappings}


def test_split_of_unbounded_range_and_remove() -> None:
    m = two_shard_map("text")
    top = m.add_range("", None, "a")
    low, high = m.split(top.id, "m")
    assert (low.high, high.high) == ("m", None)
    removed = m.remove_range(low.id)
    assert removed == low
    assert m.gaps() == [(None, "m")]
    with pytest.raises(MappingNotFoundError):
        m.remove_range(low.id)
    with pytest.raises(InvalidShardMapError, match="still holds 1 range"):
        m.remove_shard("a")
    m.remove_shard("b")
    assert list(m.shards) == ["a"]


def test_offline_mappings_are_returned_but_not_routed() -> None:
    m = two_shard_map()
    mapping = m.add_range(0, 10, "a")
    v = m.version
    assert m.set_status(mapping.id, "online") == mapping
    assert m.version == v  # no change, no new version
    offline = m.set_status(mapping.id, "offline")
    assert m.version == v + 1
    assert offline.id == mapping.id
    assert m.mapping_for_key(5).status == "offline"
    with pytest.raises(MappingOfflineError, match=r"key 5 .*\[0, 10\).*offline"):
        m.shard_for_key(5)
    m.set_status(mapping.id, "online")
    assert m.shard_for_key(5).name == "a"


def test_key_not_mapped_names_the_key_and_nearest_ranges() -> None:
    m = two_shard_map("date")
    with pytest.raises(KeyNotMappedError, match="no ranges yet"):
        m.mapping_for_key("2026-01-01")
    m.add_range("2026-01-01", "2026-02-01", "a")
    m.add_range("2026-03-01", None, "b")
    with pytest.raises(KeyNotMappedError) as caught:
        m.mapping_for_key("2026-02-14")
    message = str(caught.value)
    assert "2026-02-14" in message
    assert "'orders'" in message
    assert "below: [2026-01-01, 2026-02-01) on shard 'a'" in message
    assert "above: [2026-03-01, unbounded) on shard 'b'" in message
    assert isinstance(caught.value, LookupError)
    with pytest.raises(KeyNotMappedError, match=r"2025-12-31.*above: \[2026-01-01"):
        m.mapping_for_key(datetime.date(2025, 12, 31))


def test_intersecting_prunes_and_clips() -> None:
    m = two_shard_map()
    r1 = m.add_range(0, 100, "a")
    r2 = m.add_range(100, 200, "b", status="offline")
    r3 = m.add_range(300, None, "a")
    assert m.intersecting() == [
        ClippedRange(r1, 0, 100),
        ClippedRange(r2, 100, 200),
        ClippedRange(r3, 300, None),
    ]
    assert m.intersecting(50, 150) == [ClippedRange(r1, 50, 100), ClippedRange(r2, 100, 150)]
    assert m.intersecting(100, 101) == [ClippedRange(r2, 100, 101)]
    assert m.intersecting(99, 100) == [ClippedRange(r1, 99, 100)]
    assert m.intersecting(200, 300) == []  # the gap
    assert m.intersecting(250, None) == [ClippedRange(r3, 300, None)]
    assert m.intersecting(1000, 2000) == [ClippedRange(r3, 1000, 2000)]
    assert m.intersecting(None, 0) == []
    assert m.intersecting(None, "1") == [ClippedRange(r1, 0, 1)]
    assert m.intersecting(150, 150) == []
    assert m.intersecting(150, 50) == []
    assert m.intersecting(-50, 10)[0].shard == "a"
    with pytest.raises(KeyTypeError):
        m.intersecting("x", None)


def test_copy_pickle_equality_and_repr() -> None:
    m = two_shard_map()
    m.add_range(0, 10, "a")
    restored = pickle.loads(pickle.dumps(m))  # Spark ships it to executors in closures
    assert restored == m
    restored.add_range(10, 20, "b")  # with a lock of its own
    assert restored.version == m.version + 1
    c = m.copy()
    assert c == m
    c.add_range(10, 20, "b")
    assert c != m
    assert len(m.mappings) == 1
    assert repr(m) == "RangeShardMap(name='orders', key_type='integer', version=2, shards=2, mappings=1)"


def test_mutations_are_thread_safe() -> None:
    m = two_shard_map("bigint")

    def work(worker: int) -> bool:
        for i in range(50):
            low = (i * 8 + worker) * 10
            m.add_range(low, low + 10, "ab"[worker % 2])
        try:
            m.add_range(-10, 0, "a")  # every thread races for this range: exactly one wins
        except RangeOverlapError:
            return False
        return True

    won = run_together(work, 8)
    wins, losses = won.count(True), won.count(False)
    assert (wins, losses) == (1, 7)
    assert len(m.mappings) == 401
    assert m.version == 1 + 401  # one bump per change, none lost
    assert m.gaps() == [(None, -10), (4000, None)]
