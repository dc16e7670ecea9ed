"""Shard keys: coercion, SQL literals and predicates, JSON; and Postgres ordering and filtering every
key type exactly as Python does (else pruning and routing would send keys to the wrong shard).
"""

from __future__ import annotations

import datetime
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lakebase_spark import (
    LakebaseSparkError,
)
from lakebase_spark.sharding import (
    KEY_TYPES,
    TEXT_ORDER_NOTE,
    InvalidShardMapError,
    KeyTypeError,
    RangeShardMap,
    ShardMapError,
    coerce_key,
    key_from_json,
    key_to_json,
    range_predicate,
    sql_literal,
)

from ..shard_maps import INJECTIONS, MINUS8, PLUS5, UTC, shard

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
