"""The range shard map: keys and their SQL literals, the model, stored global/local maps and routing.

The model tests are pure Python. Ordering, literals, storage and routing run against the emulator's real
Postgres and real logins: Postgres must order every key type exactly as Python does, or pruning and
routing would send keys to the wrong shard.
"""

from __future__ import annotations

import datetime
import json
import pickle
import sys
import threading
import types
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lakebase_spark import (
    BrokerService,
    InvalidEndpointNameError,
    LakebaseSparkError,
    TLSRequiredError,
    TokenBroker,
)
from lakebase_spark.sharding import (
    GLOBAL_TABLE,
    KEY_TYPES,
    LOCAL_TABLE,
    TEXT_ORDER_NOTE,
    ClippedRange,
    InvalidRangeError,
    InvalidShardMapError,
    KeyNotMappedError,
    KeyTypeError,
    MappingNotFoundError,
    MappingOfflineError,
    MappingValidationError,
    MissingDependencyError,
    RangeMapping,
    RangeOverlapError,
    RangeShardMap,
    Shard,
    ShardConnectionError,
    ShardMapCache,
    ShardMapError,
    ShardMapNotFoundError,
    ShardMapVersionConflictError,
    UnknownShardError,
    coerce_key,
    connect_for_key,
    connect_shard,
    key_from_json,
    key_to_json,
    load_global,
    load_local,
    range_predicate,
    save_global,
    save_local,
    sql_literal,
    update_global,
)

from .conftest import ENDPOINT

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


# -- keys -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_type", "value", "expected"),
    [
        ("smallint", 7, 7),
        ("smallint", "-32768", -32768),
        ("integer", 2**31 - 1, 2**31 - 1),
        ("bigint", -(2**63), -(2**63)),
        ("bigint", Decimal("12"), 12),
        ("numeric", 3, Decimal(3)),
        ("numeric", "12.50", Decimal("12.50")),
        ("numeric", 0.1, Decimal("0.1")),
        ("date", "2026-01-01", datetime.date(2026, 1, 1)),
        ("timestamp", "2026-01-01 12:30:00.000001", datetime.datetime(2026, 1, 1, 12, 30, 0, 1)),
        ("timestamp", datetime.date(2026, 1, 1), datetime.datetime(2026, 1, 1)),
        ("timestamptz", "2026-01-01T05:00:00+05:00", datetime.datetime(2026, 1, 1, tzinfo=UTC)),
        ("timestamptz", "2026-01-01T00:00:00Z", datetime.datetime(2026, 1, 1, tzinfo=UTC)),
        ("text", "é'x", "é'x"),
        ("uuid", "{12345678-1234-5678-1234-567812345678}", uuid.UUID("12345678-1234-5678-1234-567812345678")),
    ],
)
def test_coerce_key_converts(key_type: Any, value: object, expected: object) -> None:
    got = coerce_key(key_type, value)
    assert got == expected
    assert type(got) is type(expected)
    if key_type == "timestamptz":
        assert isinstance(got, datetime.datetime)
        assert got.tzinfo is UTC


@pytest.mark.parametrize(
    ("key_type", "value", "words"),
    [
        ("integer", True, "booleans"),
        ("bigint", 1.0, "expected an int"),
        ("smallint", 32768, "-32768 .. 32767"),
        ("smallint", -32769, "out of range"),
        ("integer", 2**31, "out of range"),
        ("bigint", 2**63, "out of range"),
        ("integer", "1; DROP TABLE t", "expected an integer"),
        ("numeric", "NaN", "NaN"),
        ("numeric", Decimal("Infinity"), "infinities"),
        ("numeric", float("inf"), "infinities"),
        ("numeric", "1E+200000", "at most"),
        ("numeric", False, "booleans"),
        ("date", datetime.datetime(2026, 1, 1), "value.date()"),
        ("date", "2026-02-30", "ISO 8601 date"),
        ("timestamp", datetime.datetime(2026, 1, 1, tzinfo=UTC), "timestamptz"),
        ("timestamptz", datetime.datetime(2026, 1, 1), "naive"),
        ("timestamptz", "2026-01-01 00:00:00", "naive"),
        ("timestamptz", datetime.date(2026, 1, 1), "with a time zone"),
        ("timestamptz", datetime.datetime(1, 1, 1, tzinfo=PLUS5), "out of range"),
        ("text", 5, "expected a str"),
        ("text", "a\x00b", "NUL"),
        ("text", "a\ud800b", "surrogate"),
        ("uuid", "not-a-uuid", "expected a UUID"),
        ("uuid", 5, "uuid.UUID"),
        ("integer", None, "NULL"),
    ],
)
def test_coerce_key_rejects(key_type: Any, value: object, words: str) -> None:
    with pytest.raises(KeyTypeError, match=None) as caught:
        coerce_key(key_type, value)
    message = str(caught.value)
    assert words in message
    assert key_type in message
    assert isinstance(caught.value, TypeError)
    assert isinstance(caught.value, ShardMapError)
    assert isinstance(caught.value, LakebaseSparkError)


def test_unknown_key_type_names_the_choices() -> None:
    with pytest.raises(InvalidShardMapError, match=r"'int'.*smallint, integer, bigint"):
        coerce_key("int", 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidShardMapError, match="'int'"):
        RangeShardMap("m", "int")  # type: ignore[arg-type]


def test_sql_literals() -> None:
    assert sql_literal("integer", -5) == "-5"
    assert sql_literal("bigint", 2**63 - 1) == "9223372036854775807"
    assert sql_literal("numeric", Decimal("1E+5")) == "'100000'::numeric"
    assert sql_literal("numeric", Decimal("-1.50")) == "'-1.50'::numeric"
    assert sql_literal("numeric", Decimal("1E-3")) == "'0.001'::numeric"
    assert sql_literal("date", "0099-01-02") == "'0099-01-02'::date"
    assert sql_literal("timestamp", "2026-01-01T00:00") == "'2026-01-01 00:00:00'::timestamp"
    assert (
        sql_literal("timestamptz", "2026-01-01T01:00:00.5+01:00")
        == "'2026-01-01 00:00:00.500000+00:00'::timestamptz"
    )
    assert sql_literal("text", "x'; DROP TABLE t; --") == "'x''; DROP TABLE t; --' COLLATE \"C\""
    assert sql_literal("text", "a\\'b") == "E'a\\\\''b' COLLATE \"C\""
    u = "12345678-1234-5678-1234-567812345678"
    assert sql_literal("uuid", u.upper()) == f"'{u}'::uuid"
    for key_type, bad in [("numeric", "NaN"), ("text", "\x00"), ("integer", "1 OR 1=1"), ("uuid", "x'--")]:
        with pytest.raises(KeyTypeError):
            sql_literal(key_type, bad)  # type: ignore[arg-type]
    assert "UTF-8 byte order" in TEXT_ORDER_NOTE
    assert 'COLLATE "C"' in TEXT_ORDER_NOTE


def test_range_predicate() -> None:
    assert range_predicate("integer", "id", 0, 10) == '"id" >= 0 AND "id" < 10'
    assert range_predicate("integer", "Order Id", None, 10) == '"Order Id" < 10'
    assert range_predicate("date", "d", "2026-01-01", None) == "\"d\" >= '2026-01-01'::date"
    assert range_predicate("text", 'we"ird', None, None) == '"we""ird" IS NOT NULL'
    with pytest.raises(InvalidShardMapError):
        range_predicate("integer", "", 0, 1)


@pytest.mark.parametrize(
    ("key_type", "keys"),
    [
        ("smallint", [-32768, 0, 32767]),
        ("bigint", [-(2**63), 2**53 + 1, 2**63 - 1]),
        ("numeric", [Decimal("-0.000000000000000000001"), Decimal("1.10"), Decimal("1E+40"), Decimal("-0")]),
        ("date", [datetime.date(1, 1, 1), datetime.date(9999, 12, 31)]),
        (
            "timestamp",
            [datetime.datetime.min, datetime.datetime(2026, 1, 1, 0, 0, 0, 1), datetime.datetime.max],
        ),
        ("timestamptz", [datetime.datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=MINUS8), "1970-01-01T00:00:00Z"]),
        (
            "text",
            ["", "a'b\\c", "日本\U0001f600", '"'],
        ),
        ("uuid", [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.uuid4()]),
    ],
)
def test_json_round_trip_for_every_key_type(key_type: Any, keys: list[object], tmp_path: Path) -> None:
    m = RangeShardMap("rt", key_type, shards=[shard("a"), shard("b", instance="inst-b", endpoint=None)])
    coerced: list[Any] = sorted(coerce_key(key_type, k) for k in keys)
    for i, (low, high) in enumerate(zip(coerced, [*coerced[1:], None], strict=True)):
        m.add_range(low, high, "ab"[i % 2], status="offline" if i == 1 else "online")
    document = json.loads(m.to_json())
    for entry in document["mappings"]:
        assert isinstance(entry["low"], int if key_type in ("smallint", "integer", "bigint") else str)
        assert key_from_json(key_type, entry["low"]) == coerce_key(key_type, entry["low"])
    back = RangeShardMap.from_json(m.to_json())
    assert back == m
    assert [(x.low, x.high, x.id, x.status) for x in back.mappings] == [
        (x.low, x.high, x.id, x.status) for x in m.mappings
    ]
    assert [str(x.low) for x in back.mappings] == [str(x.low) for x in m.mappings]  # Decimal scale kept
    m.save(tmp_path / "map.json")
    assert RangeShardMap.load(tmp_path / "map.json") == m
    assert [p.name for p in tmp_path.iterdir()] == ["map.json"]  # no temporary file left
    for k in coerced:
        assert key_from_json(key_type, key_to_json(key_type, k)) == k


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


def test_from_dict_is_strict_and_derives_missing_ids() -> None:
    document: dict[str, Any] = {
        "name": "hand",
        "key_type": "integer",
        "shards": [{"name": "a", "instance": "inst-a"}],
        "mappings": [{"low": 0, "high": 10, "shard": "a"}, {"low": 10, "shard": "a", "status": "offline"}],
    }
    one, two = RangeShardMap.from_dict(document), RangeShardMap.from_dict(json.loads(json.dumps(document)))
    assert one == two
    assert one.version == 1
    assert [m.high for m in one.mappings] == [10, None]
    assert one.mappings[1].status == "offline"
    uuid.UUID(one.mappings[0].id)
    assert one.mappings[0].id != one.mappings[1].id
    cases: list[tuple[dict[str, Any], str]] = [
        ({**document, "mapings": []}, "unknown mapings"),
        ({k: v for k, v in document.items() if k != "key_type"}, "missing key_type"),
        ({**document, "format": 2}, "upgrade"),
        ({**document, "shards": {"a": {}}}, "must be a list"),
        ({**document, "mappings": [{"low": 0, "shard": "a", "hi": 5}]}, "unknown hi"),
        ({**document, "key_type": "varchar"}, "unknown shard key type"),
    ]
    for broken, words in cases:
        with pytest.raises(InvalidShardMapError, match=words):
            RangeShardMap.from_dict(broken)
    with pytest.raises(InvalidShardMapError, match="malformed"):
        RangeShardMap.from_json("{not json")
    with pytest.raises(KeyTypeError):
        RangeShardMap.from_dict({**document, "mappings": [{"low": "zero", "shard": "a"}]})


YAML_MAP = """
name: events
key_type: date
version: 3
shards:
  - {name: old, endpoint: projects/p/branches/main/endpoints/old}
  - {name: new, instance: events-new, database: events}
mappings:
  - {low: 2020-01-01, high: 2026-01-01, shard: old}
  - {low: "2026-01-01", shard: new}
"""


def test_load_yaml(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    (tmp_path / "events.yml").write_text(YAML_MAP)
    m = RangeShardMap.load(tmp_path / "events.yml")
    assert (m.name, m.key_type, m.version) == ("events", "date", 3)
    assert m.shard_for_key("2025-06-01").name == "old"
    assert m.shard_for_key(datetime.date(2026, 1, 1)).database == "events"
    (tmp_path / "broken.yaml").write_text("name: [unclosed")
    with pytest.raises(InvalidShardMapError, match="malformed"):
        RangeShardMap.load(tmp_path / "broken.yaml")


def test_yaml_goes_through_the_yaml_module_and_needs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = two_shard_map()
    m.add_range(0, None, "a")
    (tmp_path / "m.yaml").write_text(m.to_json())  # JSON is YAML
    calls: list[str] = []
    stub = types.ModuleType("yaml")

    def safe_load(text: str) -> Any:
        calls.append(text)
        return json.loads(text)

    stub.safe_load = safe_load  # type: ignore[attr-defined]
    stub.YAMLError = ValueError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "yaml", stub)
    assert RangeShardMap.load(tmp_path / "m.yaml") == m
    assert len(calls) == 1
    monkeypatch.setitem(sys.modules, "yaml", None)  # what an uninstalled module looks like to import
    with pytest.raises(MissingDependencyError, match="pip install pyyaml"):
        RangeShardMap.load(tmp_path / "m.yaml")
    with pytest.raises(InvalidShardMapError, match=r"\*.json, \*.yaml"):
        RangeShardMap.load(tmp_path / "m.toml")


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
    start = threading.Barrier(8)
    wins: list[int] = []
    losses: list[int] = []
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        start.wait()
        try:
            for i in range(50):
                low = (i * 8 + worker) * 10
                m.add_range(low, low + 10, "ab"[worker % 2])
            try:
                m.add_range(-10, 0, "a")  # every thread races for this range: exactly one wins
                wins.append(worker)
            except RangeOverlapError:
                losses.append(worker)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert (len(wins), len(losses)) == (1, 7)
    assert len(m.mappings) == 401
    assert m.version == 1 + 401  # one bump per change, none lost
    assert m.gaps() == [(None, -10), (4000, None)]


def test_connect_shard_refuses_a_password_and_plaintext() -> None:
    with pytest.raises(ValueError, match="password"):
        connect_shard(shard("a"), password="hunter2")
    for mode in ("disable", "allow", "prefer"):
        with pytest.raises(TLSRequiredError, match=mode):
            connect_shard(shard("a"), sslmode=mode)


# -- Postgres: ordering and literals --------------------------------------------------------------------

TEXT_VALUES: list[object] = [
    *["", " ", "\t", "\x7f", "\u00a0", "A", "Z", "Zebra", "a", "aB", "ab", "a b", "a'b", "z", "zebra"],
    *["é", "e\u0301", "ß", "ẞ", "über", "日本", "\ufffd", "\uffff", "\U00010000", "\U0001f600", "\U0010ffff"],
    *INJECTIONS,
]
ORDER_VALUES: dict[str, list[object]] = {
    "smallint": [0, -1, 1, 255, 256, -256, 32767, -32768, 10, 9],
    "integer": [2**31 - 1, -(2**31), 0, -1, 65536, 65535, 100, 99],
    "bigint": [2**63 - 1, -(2**63), 2**53, 2**53 + 1, -(2**53) - 1, 0, 2**32, 2**31],
    "numeric": [
        *["-1E+30", "-1.5", "-1.49999999999999999999", "0", "-0", "0.0001", "1E-20", "10"],
        *["9.99999999999999999999", "1.10", "1.1", "123456789012345678901234567890.5", "1E+40"],
    ],
    "date": [
        *[datetime.date(1, 1, 1), datetime.date(9999, 12, 31), datetime.date(99, 1, 1), "1999-01-01"],
        *["1582-10-10", "1582-10-04", "2024-02-29", "1970-01-01"],
    ],
    "timestamp": [
        datetime.datetime.min,
        datetime.datetime.max,
        "1970-01-01 00:00:00",
        "1969-12-31 23:59:59.999999",
        "2026-01-01 00:00:00.000001",
        "2026-01-01",
        "0099-06-01 12:00",
    ],
    "timestamptz": [
        datetime.datetime(2026, 1, 1, 5, tzinfo=PLUS5),  # the same instant as the next one
        "2026-01-01T00:00:00Z",
        "2025-12-31T16:00:00.000001-08:00",
        "2025-12-31T23:59:59.999999Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
        "1970-01-01T05:30:00+05:30",
    ],
    "text": TEXT_VALUES,
    "uuid": [
        "00000000-0000-0000-0000-000000000001",
        "01000000-0000-0000-0000-000000000000",
        "7fffffff-ffff-ffff-ffff-ffffffffffff",
        "80000000-0000-0000-0000-000000000000",  # above 7fff...: bytes compare unsigned
        "ffffffff-ffff-ffff-ffff-fffffffffffe",
        "00000000-0000-0000-8000-000000000000",
        uuid.UUID(int=0),
        uuid.UUID(int=2**128 - 1),
    ],
}


@pytest.mark.postgres
@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_postgres_orders_and_filters_keys_like_python(admin: psycopg.Connection[Any], key_type: Any) -> None:
    values = [coerce_key(key_type, v) for v in ORDER_VALUES[key_type]]
    column_type = key_type
    icu = (
        key_type == "text"
        and admin.execute("SELECT 1 FROM pg_collation WHERE collname = 'en-x-icu'").fetchone()
    )
    if icu:
        column_type = 'text COLLATE "en-x-icu"'  # a column collation unlike code point order
    admin.execute("SET TimeZone = 'Asia/Kolkata'")  # literals must not depend on the session's zone
    admin.execute(f"CREATE TEMP TABLE k_order (i int, k {column_type})")
    rows = ", ".join(f"({i}, {sql_literal(key_type, v)})" for i, v in enumerate(values))
    admin.execute(f"INSERT INTO k_order VALUES {rows}")
    with admin.transaction():  # read back in UTC: psycopg cannot load 9999-12-31 24:00 UTC in +05:30
        admin.execute("SET LOCAL TimeZone = 'UTC'")
        stored = [r[0] for r in admin.execute("SELECT k FROM k_order ORDER BY i")]
    assert stored == values  # every literal means its key

    collate = ' COLLATE "C"' if key_type == "text" else ""
    postgres_order = [r[0] for r in admin.execute(f"SELECT i FROM k_order ORDER BY k{collate}, i")]
    python_order = sorted(range(len(values)), key=lambda i: (values[i], i))
    assert postgres_order == python_order
    if icu:  # the test can tell: without COLLATE "C" the order differs
        assert [r[0] for r in admin.execute("SELECT i FROM k_order ORDER BY k, i")] != python_order

    bounds: list[Any] = sorted(set(values))[::2]
    for low in [None, *bounds]:
        for high in [None, *bounds]:
            predicate = range_predicate(key_type, "k", low, high)
            got = [r[0] for r in admin.execute(f"SELECT i FROM k_order WHERE {predicate} ORDER BY i")]
            want = [
                i for i, v in enumerate(values) if (low is None or not v < low) and (high is None or v < high)
            ]
            assert got == want, predicate


@pytest.mark.postgres
@pytest.mark.parametrize("standard_conforming_strings", ["on", "off"])
def test_text_literals_cannot_inject(
    admin: psycopg.Connection[Any], standard_conforming_strings: str
) -> None:
    admin.execute("CREATE TEMP TABLE canary (x int)")
    admin.execute(f"SET standard_conforming_strings = {standard_conforming_strings}")
    admin.execute("SET escape_string_warning = off")
    for text in INJECTIONS:
        literal = sql_literal("text", text)
        # The simple query protocol runs every statement in the string: one that got out would run.
        result = admin.pgconn.exec_(f"SELECT {literal}, 'tail'".encode())
        assert result.status == psycopg.pq.ExecStatus.TUPLES_OK, result.error_message
        assert (result.ntuples, result.nfields) == (1, 2)
        assert (result.get_value(0, 0) or b"").decode() == text
    assert admin.execute("SELECT count(*) FROM canary").fetchone() == (0,)


# -- Postgres: stored maps ------------------------------------------------------------------------------


@pytest.fixture
def schema(admin: psycopg.Connection[Any]) -> Iterator[str]:
    name = f"sm_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE SCHEMA "{name}"')
    yield name
    admin.execute(f'DROP SCHEMA "{name}" CASCADE')


def text_map() -> RangeShardMap:
    m = two_shard_map("text")
    m.add_range("", "m", "a")
    m.add_range("m", "x'y", "b")
    m.add_range("x'y", None, "a", status="offline")
    return m


@pytest.mark.postgres
def test_save_and_load_global_with_optimistic_concurrency(
    admin: psycopg.Connection[Any], schema: str
) -> None:
    m = text_map()
    with pytest.raises(ShardMapNotFoundError, match="no table"):
        load_global(admin, "orders", schema=schema)
    save_global(admin, m, expected_version=0, schema=schema)
    assert load_global(admin, "orders", schema=schema) == m
    row = admin.execute(
        psycopg.sql.SQL("SELECT version, key_type, definition->>'name' FROM {}").format(
            psycopg.sql.Identifier(schema, GLOBAL_TABLE)
        )
    ).fetchone()
    assert row == (m.version, "text", "orders")
    with pytest.raises(ShardMapNotFoundError, match=r"'nope'.*stored maps: 'orders'"):
        load_global(admin, "nope", schema=schema)

    mine, theirs = load_global(admin, "orders", schema=schema), load_global(admin, "orders", schema=schema)
    loaded = mine.version
    theirs.split(theirs.mapping_for_key("a").id, "f")
    save_global(admin, theirs, expected_version=loaded, schema=schema)
    mine.set_status(mine.mapping_for_key("z").id, "online")
    with pytest.raises(
        ShardMapVersionConflictError, match=f"is at version {loaded + 1}, not the expected version"
    ):
        save_global(admin, mine, expected_version=loaded, schema=schema)
    assert load_global(admin, "orders", schema=schema) == theirs  # the failed save changed nothing
    with pytest.raises(ShardMapVersionConflictError, match=r"expected \(absent\)"):
        save_global(admin, mine, expected_version=0, schema=schema)
    save_global(admin, mine, schema=schema)  # no expected version: overwrite
    assert load_global(admin, "orders", schema=schema) == mine
    with pytest.raises(ShardMapVersionConflictError, match="does not exist"):
        save_global(admin, two_shard_map(name="other"), expected_version=1, schema=schema)
    with pytest.raises(ValueError, match="expected_version"):
        save_global(admin, mine, expected_version=-1, schema=schema)


@pytest.mark.postgres
def test_store_calls_commit_and_leave_no_open_transaction(emulator: Any, schema: str) -> None:
    from .conftest import DATABASE

    m = text_map()
    with psycopg.connect(emulator.admin_conninfo(DATABASE)) as conn:  # not autocommit
        save_global(conn, m, schema=schema)
        save_local(conn, m, "a", schema=schema)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with psycopg.connect(emulator.admin_conninfo(DATABASE), autocommit=True) as other:
            assert load_global(other, "orders", schema=schema) == m
            assert len(load_local(other, "orders", schema=schema)) == 2
        load_global(conn, "orders", schema=schema)
        load_local(conn, "orders", schema=schema)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


@pytest.mark.postgres
def test_update_global_retries_after_a_conflict(admin: psycopg.Connection[Any], schema: str) -> None:
    save_global(admin, text_map(), schema=schema)
    calls = 0

    def change(m: RangeShardMap) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # someone else saves between our load and our save
            update_global(
                admin,
                "orders",
                lambda other: other.remove_range(other.mapping_for_key("z").id),
                schema=schema,
            )
        m.split(m.mapping_for_key("a").id, "f")

    saved = update_global(admin, "orders", change, schema=schema)
    assert calls == 2
    stored = load_global(admin, "orders", schema=schema)
    assert stored == saved
    assert len(stored.mappings) == 3  # split (+1) after the other's removal (-1)
    assert stored.gaps() == [(None, ""), ("x'y", None)]

    def racing(m: RangeShardMap) -> None:
        other = m.copy()
        other.add_shard(shard("d"))
        save_global(admin, other, schema=schema)
        m.add_shard(shard("c"))

    with pytest.raises(ShardMapVersionConflictError):
        update_global(admin, "orders", racing, schema=schema, retries=0)
    assert "c" not in load_global(admin, "orders", schema=schema).shards


@pytest.mark.postgres
def test_local_maps(admin: psycopg.Connection[Any], schema: str) -> None:
    m = text_map()
    assert load_local(admin, "orders", schema=schema) == []  # no table yet
    save_local(admin, m, "a", schema=schema)
    on_a = [x for x in m.mappings if x.shard == "a"]
    assert load_local(admin, "orders", schema=schema) == on_a
    assert load_local(admin, "orders", shard="b", schema=schema) == []
    assert load_local(admin, "other", schema=schema) == []
    rows = admin.execute(
        psycopg.sql.SQL("SELECT low, high, status, map_version FROM {} ORDER BY low").format(
            psycopg.sql.Identifier(schema, LOCAL_TABLE)
        )
    ).fetchall()
    assert rows == [('""', '"m"', "online", m.version), ('"x\'y"', None, "offline", m.version)]

    m.move_range(m.mapping_for_key("a").id, "b")  # moved away: the shard's rows are replaced
    save_local(admin, m, "a", schema=schema)
    save_local(admin, m, "b", schema=schema)
    assert [x.low for x in load_local(admin, "orders", shard="a", schema=schema)] == ["x'y"]
    assert [x.low for x in load_local(admin, "orders", shard="b", schema=schema)] == ["", "m"]
    with pytest.raises(UnknownShardError, match="'c'"):
        save_local(admin, m, "c", schema=schema)


@pytest.mark.postgres
def test_shard_map_cache(emulator: Any, admin: psycopg.Connection[Any], schema: str) -> None:
    from .conftest import DATABASE

    m = text_map()
    save_global(admin, m, schema=schema)
    now = [0.0]
    opened: list[psycopg.Connection[Any]] = []

    def connect() -> psycopg.Connection[Any]:
        opened.append(psycopg.connect(emulator.admin_conninfo(DATABASE), autocommit=True))
        return opened[-1]

    cache = ShardMapCache(connect, "orders", schema=schema, max_age=60, clock=lambda: now[0])
    first = cache.get()
    assert first == m
    assert cache.loads == 1
    first.remove_range(first.mappings[0].id)  # a copy: the cache keeps its own
    assert cache.get() == m
    assert cache.loads == 1
    assert all(c.closed for c in opened)

    update_global(admin, "orders", lambda x: x.remove_range(x.mapping_for_key("z").id), schema=schema)
    assert cache.get().version == m.version  # cached
    assert cache.refresh().version == m.version + 1
    update_global(admin, "orders", lambda x: x.remove_range(x.mapping_for_key("n").id), schema=schema)
    now[0] = 59.0
    assert cache.get().version == m.version + 1
    now[0] = 60.0
    assert cache.get().version == m.version + 2  # max_age passed: reloaded
    assert cache.loads == 3

    fresh = ShardMapCache(connect, "orders", schema=schema)
    threads = [threading.Thread(target=fresh.get) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fresh.loads == 1  # concurrent first callers share one load
    with pytest.raises(ShardMapNotFoundError):
        ShardMapCache(connect, "missing", schema=schema).get()


# -- Postgres: routing with real logins -----------------------------------------------------------------


@pytest.fixture(scope="module")
def routed(emulator: Any) -> RangeShardMap:
    """Shard 'a' on the Autoscaling endpoint (database shardmap_a), 'b' on a Provisioned instance."""
    emulator.create_database(DB_A)
    emulator.create_database(DB_B)
    emulator.create_instance(INSTANCE)
    m = RangeShardMap(
        "routing",
        "bigint",
        shards=[Shard("a", endpoint=ENDPOINT, database=DB_A), Shard("b", instance=INSTANCE, database=DB_B)],
    )
    m.add_range(0, 100, "a")
    m.add_range(100, None, "b")
    return m


@pytest.mark.postgres
def test_connect_shard_logs_in_to_the_shards_database(
    emulator: Any, broker_service: BrokerService, routed: RangeShardMap
) -> None:
    for name, database in (("a", DB_A), ("b", DB_B)):
        with connect_shard(routed.shards[name], broker=broker_service, autocommit=True) as conn:
            assert conn.execute("SELECT current_user, current_database()").fetchone() == (
                emulator.user_name,
                database,
            )
            assert conn.execute("SHOW application_name").fetchone() == ("lakebase-spark",)
            assert conn.pgconn.ssl_in_use


@pytest.mark.postgres
def test_connect_for_key_routes_and_validates(
    emulator: Any, broker_service: BrokerService, routed: RangeShardMap
) -> None:
    m = routed.copy()
    for name in ("a", "b"):
        with connect_shard(m.shards[name], broker=broker_service, autocommit=True) as conn:
            save_local(conn, m, name)

    def database(shard_map: RangeShardMap, key: object, **kw: Any) -> str:
        with connect_for_key(shard_map, key, broker=broker_service, **kw) as conn:
            row = conn.execute("SELECT current_database()").fetchone()
            assert row is not None
            return str(row[0])

    assert database(m, 42, validate=True) == DB_A
    assert database(m, "99", validate=True) == DB_A
    assert database(m, 100, validate=True) == DB_B
    assert database(m, 2**63 - 1, validate=True) == DB_B

    # A stale global map: [0, 100) moved to 'b' but 'b' was never told (its local map lacks the range).
    moved = m.copy()
    moved.move_range(moved.mapping_for_key(42).id, "b")
    with pytest.raises(MappingValidationError, match=r"shard 'b' .*does not hold range \[0, 100\)"):
        database(moved, 42, validate=True)
    assert database(moved, 42) == DB_B  # what validation prevents: reading the wrong shard

    # The shard has the range offline (a move in progress) while the global map says online.
    offline = m.copy()
    offline.set_status(offline.mapping_for_key(42).id, "offline")
    with connect_shard(m.shards["a"], broker=broker_service, autocommit=True) as conn:
        save_local(conn, offline, "a")
    with pytest.raises(MappingValidationError, match="offline"):
        database(m, 42, validate=True)
    with pytest.raises(MappingOfflineError):  # the global map itself says offline: no connection
        database(offline, 42)
    with pytest.raises(KeyNotMappedError, match="key -1 "):
        database(m, -1)


@pytest.mark.postgres
def test_connect_shard_retries_once_with_a_new_token(emulator: Any, routed: RangeShardMap) -> None:
    # Its own principal, so revoking its tokens cannot disturb other tests' cached ones.
    user = "shard-router@example.com"
    service = BrokerService(TokenBroker(emulator.workspace_client(token=emulator.add_user(user))))
    with connect_shard(routed.shards["a"], broker=service) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (user,)
    assert emulator.tokens.revoke(user) == 1
    with connect_shard(routed.shards["a"], broker=service) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (user,)
    assert (service.broker.stats.mints, service.broker.stats.refused_tokens) == (2, 1)


@pytest.mark.postgres
def test_connect_shard_failure_names_the_shard_not_the_token(emulator: Any, routed: RangeShardMap) -> None:
    service = BrokerService(
        TokenBroker(emulator.workspace_client())
    )  # leaves the shared broker's cache alone
    emulator.faults.refuse_logins_for(60)
    try:
        with pytest.raises(ShardConnectionError) as caught:
            connect_shard(routed.shards["a"], broker=service)
    finally:
        emulator.faults.refuse_logins_for(0)
    assert service.broker.stats.refused_tokens == 1  # retried once with a new token, then gave up
    token = service.broker.credential(endpoint=ENDPOINT).token.reveal()
    error = caught.value
    assert token not in str(error)
    assert token not in repr(error.args)
    assert "shard 'a'" in str(error)
    assert "authentication failed" in str(error)
    assert error.__cause__ is None
    assert error.__context__ is None  # psycopg's error holds the password in its pgconn
    assert isinstance(error, ConnectionError)
