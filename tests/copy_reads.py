"""The COPY reader against the JDBC reader: tables of every type both read, with edge values, read by
each and compared row for row (run by reading/test_copy_reader.py, and in a JVM time zone with DST and a
local mean time by jobs/copy_read_job.py).

Each column holds its own list of values, one per row (rows past a list's end are NULL; the last row is
NULL in every column), so one table and one read per reader cover every case.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

import lakebase_spark

#: (column type, its values as SQL literals): what Spark's PostgreSQL integration suite reads, and edges.
DECODED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("smallint", ("0", "-32768", "32767")),
    ("integer", ("-2147483648", "2147483647", "0")),
    ("bigint", ("-9223372036854775808", "9223372036854775807", "42")),
    ("real", ("1.5", "'NaN'", "'Infinity'", "'-Infinity'", "'-0'", "3.4028235e38", "0.1")),
    ("double precision", ("0.1", "'NaN'", "'-Infinity'", "1e-308", "'-0'", "1.7976931348623157e308")),
    ("boolean", ("true", "false")),
    ("numeric(12,2)", ("0.01", "-12345678.90", "9999999999.99", "0", "-0.5")),
    ("numeric(38,0)", ("12345678901234567890123456789012345678", "-1", "0")),
    ("numeric(5,5)", ("0.12345", "-0.00001")),
    ("numeric(18,4)", ("99999999999999.9999", "-0.0001", "12.5")),
    ("numeric(20,2)", ("999999999999999999.99", "-1.25")),
    (
        "numeric",
        (
            "1.5",
            "12345678901234567890.123456789",
            "0.000000000000000000001",
            "-1e19",
            "0.1234567890123456789",
        ),
    ),
    ("text", ("''", "'héllo wörld'", "'😀 emoji'", "E'a\\nb\\tc\\\\d'", "repeat('x', 10000)")),
    ("varchar(10)", ("'abc'", "''", "'ünïcödé'")),
    ("char(5)", ("'ab'", "'abcde'", "''")),
    ("name", ("'a_name'",)),
    ("bytea", ("'\\x'::bytea", "'\\x00ff10'::bytea", "decode(repeat('ab', 5000), 'hex')")),
    (
        "date",
        (
            "'2024-03-10'",
            "'1582-10-04'",
            "'1582-10-15'",
            "'1000-01-01'",
            "'0001-01-01 BC'",
            "'0044-03-15 BC'",
            "'1900-01-01'",
            "'1899-12-31'",
            "'9999-12-31'",
        ),
    ),
    (
        "timestamp",
        (
            "'2024-03-10 02:30'",
            "'2024-11-03 01:30'",
            "'2024-03-10 01:30'",
            "'1900-01-01 00:00:00.5'",
            "'1850-06-01 12:00:00.12'",
            "'0001-01-01 00:00:01'",
            "'0044-03-15 12:00 BC'",
            "'infinity'",
            "'-infinity'",
            "'1969-12-31 23:59:59.999999'",
            "'1582-10-10 10:00'",
            "'9999-12-31 23:59:59.999999'",
        ),
    ),
    (
        "timestamptz",
        (
            "'2024-03-10 02:30+00'",
            "'2024-11-03 05:30+00'",
            "'1900-01-01 00:00:00.5+00'",
            "'1850-06-01 12:00:00.12-03:30'",
            "'0001-01-01 00:00:01+00'",
            "'0044-03-15 12:00+00 BC'",
            "'infinity'",
            "'-infinity'",
            "'1969-12-31 23:59:59.999999+00'",
            "'1582-10-10 10:00+00'",
            "'2024-06-30 23:59:59.123456+05:45'",
        ),
    ),
    # Spark reads these as strings; the COPY reader selects their text output.
    ("uuid", ("'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",)),
    ("json", ('\'{"a": [1, 2],  "b": null}\'',)),
    ("jsonb", ('\'{"a": [1, 2], "b": "ü"}\'',)),
    ("inet", ("'192.168.0.1/24'", "'::1'")),
    ("cidr", ("'10.0.0.0/8'",)),
    ("macaddr", ("'08:00:2b:01:02:03'",)),
    ("interval", ("'1 day 02:03:04.5'", "'-3 years'")),
    ("xml", ("'<a>b</a>'",)),
    ("cr_mood", ("'happy'", "'sad'")),
    ("tsvector", ("'a fat cat'",)),
    ("int4range", ("'[1,10)'",)),
)
#: Types the COPY reader has no decoder for (Spark reads them as arrays, times, ...): the read goes to
#: the JDBC reader, and still gives the same values.
FALLBACK: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("integer[]", ("'{1,2,NULL}'", "'{}'")),
    ("text[]", ("'{a,\"b c\",NULL}'",)),
    ("time", ("'12:34:56.789'",)),
    ("bigint", ("1", "2")),
)


def make_table(conn: Any, table: str, columns: tuple[tuple[str, tuple[str, ...]], ...]) -> list[str]:
    """Create ``table`` (``id`` and ``c0..cN``) with the columns' values; return the column names."""
    conn.execute(
        "DO $$ BEGIN CREATE TYPE cr_mood AS ENUM ('happy', 'sad');"
        " EXCEPTION WHEN duplicate_object THEN NULL; END $$"
    )
    names = [f"c{i}" for i in range(len(columns))]
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
    body = ", ".join(f"{name} {kind}" for name, (kind, _) in zip(names, columns, strict=True))
    conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, {body})")
    rows = max(len(values) for _, values in columns) + 1  # the last row: NULL everywhere
    for row in range(rows):
        literals = [f"({values[row]})::{kind}" if row < len(values) else "NULL" for kind, values in columns]
        conn.execute(f"INSERT INTO {table} VALUES ({row}, {', '.join(literals)})")
    conn.execute(f"ANALYZE {table}")
    return names


def read_both(spark: Any, table: str, **kwargs: Any) -> tuple[Any, Any]:
    """The table through the COPY reader and through the JDBC reader, same plan otherwise."""
    return (
        lakebase_spark.read(spark, table, reader="copy", **kwargs),
        lakebase_spark.read(spark, table, reader="jdbc", **kwargs),
    )


def differences(copy: Any, jdbc: Any) -> list[str]:
    """Row by row (by id), each value as Spark prints it (so BC dates, NaN, -0.0 and a decimal's scale
    all count; binary as hex): an empty list when the readers agree."""
    found = []
    if copy.schema != jdbc.schema:
        found.append(f"schema: {copy.schema.simpleString()} != {jdbc.schema.simpleString()}")
    got, want = _printed(copy), _printed(jdbc)
    if got.keys() != want.keys():
        found.append(f"ids: {sorted(got)} != {sorted(want)}")
    for key in sorted(want.keys() & got.keys()):
        for name, value in want[key].items():
            if got[key][name] != value:
                found.append(f"row {key} {name}: copy {str(got[key][name])[:80]} != jdbc {str(value)[:80]}")
    return found


def _printed(df: Any) -> dict[Any, dict[str, Any]]:
    from pyspark.sql import functions as F

    columns = [
        (F.hex(F.col(f.name)) if f.dataType.typeName() == "binary" else F.col(f.name).cast("string")).alias(
            f.name
        )
        for f in df.schema.fields
    ]
    return {r["id"]: r.asDict() for r in df.select(*columns).collect()}


def uses_copy(df: Any) -> bool:
    """True when the DataFrame's scan is the COPY reader's."""
    return "lakebase COPY" in df._jdf.queryExecution().executedPlan().toString()
