"""``lakebase_spark.write`` writes what Spark's own JDBC writer writes, for every (Spark type, column type)
pair, checked by running both writers on the same columns and comparing the tables value for value.

The cases: every column of the tables of Spark's own PostgreSQL integration suite (read with Spark,
then written back into a column of the same type), and a matrix of Spark types and edge values against
common column types. The rule, per case:

- Spark writes it: ours writes the same values (``EXCEPT ALL`` both ways on the values' text);
- Spark refuses it only because pgjdbc binds strings as ``varchar``: ours parses the text as the
  column's type, and holds what Postgres' own parsing gives (the suite's source values, or the strings
  parsed by ``COPY``);
- Spark refuses it otherwise: ours refuses it too, before a row moves, naming the column (a type
  Postgres cannot take), or fails naming the column (a value it cannot take).
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyspark
import pytest
from psycopg import sql

from lakebase_spark import write

from ..conftest import DATABASE, ENDPOINT
from ..differential import Case, Outcome, differs, run

pytestmark = [pytest.mark.spark, pytest.mark.postgres, pytest.mark.e2e]

SPARK_MAJOR = int(pyspark.__version__.split(".")[0])

# -- the tables of Spark's PostgresIntegrationSuite (its dataPreparation, trimmed to what PG 15 has) --------

SUITE = [
    "CREATE TYPE spark_suite.enum_type AS ENUM ('d1', 'd2')",
    """CREATE TABLE spark_suite.bar (c0 text, c1 integer, c2 double precision, c3 bigint,
        c4 bit(1), c5 bit(10), c6 bytea, c7 boolean, c8 inet, c9 cidr,
        c10 integer[], c11 text[], c12 real[], c13 numeric(2,2)[], c14 spark_suite.enum_type,
        c15 float4, c16 smallint, c17 numeric[], c18 bit varying(6), c19 point, c20 line,
        c21 lseg, c22 box, c23 path, c24 polygon, c25 circle, c26 pg_lsn,
        c27 character(2), c28 character varying(3), c29 date, c30 interval,
        c31 macaddr, c32 macaddr8, c33 numeric(6,4), c34 pg_snapshot,
        c35 real, c36 time, c37 timestamp, c38 tsquery, c39 tsvector, c40 txid_snapshot, c41 xml)""",
    """INSERT INTO spark_suite.bar VALUES ('hello', 42, 1.25, 123456789012345, B'0',
        B'1000100101', E'\\\\xDEADBEEF', true, '172.16.0.42', '192.168.0.0/16',
        '{1, 2}', '{"a", null, "b"}', '{0.11, 0.22}', '{0.11, 0.22}', 'd1', 1.01, 1,
        '{111.2222, 333.4444}', B'101010', '(800, 600)', '(23.8, 56.2), (16.23, 89.2)',
        '[(80.12, 131.24), (201.5, 503.33)]', '(19.84, 11.23), (20.21, 2.1)',
        '(10.2, 30.4), (50.6, 70.8), (90.1, 11.3)',
        '((100.3, 40.2), (20.198, 83.1), (500.821, 311.38))', '<500, 200, 100>', '16/B374D848',
        'ab', 'efg', '2021-02-02', '1 minute', '00:11:22:33:44:55',
        '00:11:22:33:44:55:66:77', 12.3456, '10:20:10,14,15', 1E+37,
        '17:22:31.123', '2016-08-12 10:22:31.949271', 'cat:AB & dog:CD',
        'dog and cat and fox', '10:20:10,14,15', '<key>id</key><value>10</value>')""",
    "INSERT INTO spark_suite.bar DEFAULT VALUES",
    """CREATE TABLE spark_suite.ts_with_timezone (id integer, tstz timestamptz, ttz timetz)""",
    """INSERT INTO spark_suite.ts_with_timezone VALUES
        (1, '2016-08-12 10:22:31.949271-07', '17:22:31.949271+00')""",
    """CREATE TABLE spark_suite.st_with_array (c0 uuid, c1 inet, c2 cidr,
        c3 json, c4 jsonb, c5 uuid[], c6 inet[], c7 cidr[], c8 json[], c9 jsonb[], c10 xml[],
        c11 tsvector[], c12 tsquery[], c13 macaddr[], c15 point[],
        c16 line[], c17 lseg[], c18 box[], c19 path[], c20 polygon[], c21 circle[], c22 pg_lsn[],
        c23 bit varying(6)[], c24 interval[], c25 macaddr8[])""",
    """INSERT INTO spark_suite.st_with_array VALUES (
        '0a532531-cdf1-45e3-963d-5de90b6a30f1', '172.168.22.1', '192.168.100.128/25',
        '{"a": "foo", "b": "bar"}', '{"a": 1, "b": 2}',
        ARRAY['7be8aaf8-650e-4dbb-8186-0a749840ecf2', '205f9bfc-018c-4452-a605-609c0cfad228']::uuid[],
        ARRAY['172.16.0.41', '172.16.0.42']::inet[], ARRAY['192.168.0.0/24', '10.1.0.0/16']::cidr[],
        ARRAY['{"a": "foo", "b": "bar"}', '{"a": 1, "b": 2}']::json[],
        ARRAY['{"a": 1, "b": 2, "c": 3}']::jsonb[], ARRAY['<key>id</key><value>10</value>']::xml[],
        ARRAY['The dog laying on the grass', 'the:1 cat:2 is:3 on:4 the:5 table:6']::tsvector[],
        ARRAY['programming & language & ! interpreter', 'cat:AB & dog:CD']::tsquery[],
        ARRAY['12:34:56:78:90:ab', 'cd-ef-12-34-56-78']::macaddr[],
        ARRAY['(800, 600)', '83.24, 5.10']::point[],
        ARRAY['(23.8, 56.2), (16.23, 89.2)', '{23.85, 10.87, 5.92}']::line[],
        ARRAY['[(80.12, 131.24), (201.5, 503.33)]']::lseg[],
        ARRAY['(19.84, 11.23), (20.21, 2.1)', '(1, 2), (3, 4)']::box[],
        ARRAY['(10.2, 30.4), (50.6, 70.8), (90.1, 11.3)']::path[],
        ARRAY['((100.3, 40.2), (20.198, 83.1), (500.821, 311.38))']::polygon[],
        ARRAY['<500, 200, 100>']::circle[], ARRAY['16/B374D848']::pg_lsn[],
        ARRAY[B'101010']::bit varying(6)[], ARRAY['1 day', '2 minutes']::interval[],
        ARRAY['08:00:2b:01:02:03:04:05']::macaddr8[])""",
    """CREATE TABLE spark_suite.char_types (c0 char(4), c1 character(4), c2 character varying(4),
        c3 varchar(4), c4 bpchar(1), c5 bpchar, c6 char)""",
    "INSERT INTO spark_suite.char_types VALUES ('abcd', 'efgh', 'ijkl', 'mnop', 'q', 'eason', 'c')",
    """CREATE TABLE spark_suite.char_array_types (c0 char(4)[], c1 character(4)[],
        c2 character varying(4)[], c3 varchar(4)[], c4 bpchar(1)[], c5 bpchar[])""",
    """INSERT INTO spark_suite.char_array_types VALUES
        ('{"a", "bcd"}', '{"ef", "gh"}', '{"i", "j", "kl"}', '{"mnop"}', '{"q", "r"}',
         '{"Eason", "Ethan"}')""",
    "CREATE TABLE spark_suite.money_types (c0 money)",
    "INSERT INTO spark_suite.money_types VALUES ('$1,000.00')",
    "CREATE TABLE spark_suite.timestamp_ntz (v timestamp)",
    """INSERT INTO spark_suite.timestamp_ntz VALUES ('2013-04-05 12:01:02'), ('2013-04-05 18:01:02.123'),
        ('2013-04-05 18:01:02.123456')""",
    "CREATE DOMAIN spark_suite.not_null_text AS TEXT DEFAULT ''",
    """CREATE TABLE spark_suite.custom_type (type_array spark_suite.not_null_text[],
        type spark_suite.not_null_text)""",
    "INSERT INTO spark_suite.custom_type VALUES ('{1,fds,fdsa}', 'fdasfasdf')",
    "CREATE TABLE spark_suite.test_bit_array (c1 bit(1)[], c2 bit(5)[])",
    "INSERT INTO spark_suite.test_bit_array VALUES (ARRAY[B'1', B'0'], ARRAY[B'00001', B'00010'])",
    "CREATE DOMAIN spark_suite.myint AS integer CHECK (VALUE > 0)",
    "CREATE TABLE spark_suite.domain_table (c1 spark_suite.myint)",
    "INSERT INTO spark_suite.domain_table VALUES (1)",
]
SUITE_TABLES = (
    "bar",
    "ts_with_timezone",
    "st_with_array",
    "char_types",
    "char_array_types",
    "money_types",
    "timestamp_ntz",
    "custom_type",
    "test_bit_array",
    "domain_table",
)

# -- the matrix: Spark types with edge values, against common column types ------------------------------

NUMBERS = ("smallint", "integer", "bigint", "real", "double precision", "numeric", "numeric(12,2)")
TEXTS = ("text", "varchar(60)", "char(40)")
TIMES = ("date", "time", "timetz", "timestamp", "timestamptz")

#: For each Spark type, the column types to write it into: those Postgres assigns Spark's parameter to,
#: and a few it does not (both writers must refuse those; the rest of the refusals are the same rule).
COLUMNS: dict[str, tuple[str, ...]] = {
    "boolean": ("boolean", *TEXTS, "integer", "json"),
    "tinyint": (*NUMBERS, *TEXTS, "money", "oid", "regclass", "boolean", "date"),
    "smallint": (*NUMBERS, *TEXTS, "money", "oid", "regclass", "bytea"),
    "int": (*NUMBERS, *TEXTS, "money", "oid", "regclass", "boolean", "uuid"),
    "bigint": (*NUMBERS, *TEXTS, "money", "oid", "regclass", "interval"),
    "float": (*NUMBERS, *TEXTS, "money", "boolean"),
    "double": (*NUMBERS, *TEXTS, "money", "date"),
    "decimal(10,2)": (*NUMBERS, *TEXTS, "money", "oid"),
    "decimal(38,18)": (*NUMBERS, *TEXTS, "money"),
    "decimal(5,0)": ("smallint", "integer", "numeric", "text", "money", "boolean"),
    "binary": ("bytea", *TEXTS, "integer", "uuid"),
    "date": (*TIMES, *TEXTS, "bytea", "integer", "json"),
    "timestamp": (*TIMES, *TEXTS, "bytea", "interval"),
    "timestamp_ntz": (*TIMES, *TEXTS, "bytea"),
}

VALUES: dict[str, tuple[Any, ...]] = {
    "boolean": (True, False, None),
    "tinyint": (0, 1, -128, 127, None),
    "smallint": (0, -32768, 32767, 7),
    "int": (0, 1, -1, 2147483647, -2147483648, 40000),
    "bigint": (0, 9223372036854775807, -9223372036854775808, 2**53 + 1, 123),
    "float": (
        0.0,
        -0.0,
        1.01,
        0.3,
        1e-45,
        3.4028235e38,
        math.nan,
        math.inf,
        -math.inf,
        16777217.0,
        2.5,
        -3.5,
    ),
    "double": (
        0.0,
        -0.0,
        0.1 + 0.2,
        1 + 2**-24,
        1e300,
        5e-324,
        math.nan,
        math.inf,
        -math.inf,
        2.5,
        3.5,
        -2.5,
        1e15 + 0.3,
        123456789.123456789,
        1e-7,
    ),
    "decimal(10,2)": tuple(
        Decimal(v) for v in ("10.25", "-10.25", "2.50", "-2.50", "0.00", "99999999.99", "10000.00", "0.05")
    ),
    "decimal(38,18)": tuple(
        Decimal(v) for v in ("0.000000000000000001", "12345678901234567890.123456789012345678", "-0.5", "1.5")
    ),
    "decimal(5,0)": (Decimal("12345"), Decimal("-1"), Decimal("0")),
    "string": ("", "a", "tab\there", "line\nbreak", "back\\slash", "é€😀", "  padded  ", "true", "12"),
    "binary": (b"", b"\x00\xff", b"abc\\def"),
    "date": (date(2024, 1, 1), date(1970, 1, 1), date(1, 1, 1), date(9999, 12, 31), date(1582, 10, 15)),
    "timestamp": (
        datetime(2024, 1, 1, 12, 34, 56, 123456),
        datetime(1970, 1, 1),
        datetime(1969, 12, 31, 23, 59, 59, 999999),
        datetime(2262, 4, 11, 23, 47, 16, 854775),
        datetime(1900, 1, 1, 0, 0, 0, 1),
    ),
    "timestamp_ntz": (
        datetime(2024, 1, 1, 12, 34, 56, 123456),
        datetime(1970, 1, 1),
        datetime(9999, 12, 31, 23, 59, 59, 999999),
    ),
}

#: Strings Postgres can parse as each column type: strings go into any column (parsed as its type).
STRINGS_FOR: dict[str, tuple[str, ...]] = {
    "smallint": ("12", "-7", " 3 "),
    "integer": ("12", "-2147483648"),
    "bigint": ("9223372036854775807",),
    "real": ("1.01", "NaN", "-Infinity", "1e-45"),
    "double precision": ("0.30000000000000004", "1e300"),
    "numeric": ("12.500", "-0.001", "1e3"),
    "numeric(12,2)": ("12.345", "-0.005"),
    "boolean": ("true", "f", "yes", "0"),
    "date": ("2024-01-01", "1 Jan 2024", "infinity"),
    "time": ("12:34:56.123456", "allballs"),
    "timetz": ("12:34:56+05:30",),
    "timestamp": ("2024-01-01 12:34:56.123456", "-infinity"),
    "timestamptz": ("2024-01-01 12:34:56.123456+05:30",),
    "bytea": ("\\x00ff", "abc"),
    "json": ('{"b": 1, "a": [1, 2]}', "[]", "null"),
    "jsonb": ('{"b": 1, "a": [1, 2]}', '"s"'),
    "uuid": ("123e4567-e89b-12d3-a456-426614174000", "{123e4567-e89b-12d3-a456-426614174000}"),
    "money": ("12.34", "$1,000.00"),
    "interval": ("1 day 2 hours", "P1Y2M"),
    "oid": ("4294967295",),
    "regclass": ("pg_class", "pg_catalog.pg_type"),
    "bit(1)": ("1", "0"),
}

#: Strings a column cannot take: both writers fail, ours naming the column (and the row).
BAD_STRINGS: dict[str, tuple[str, ...]] = {
    "jsonb": ('{"a": 1}', "{bad"),
    "json": ("[1, 2",),
    "integer": ("12", "twelve"),
    "uuid": ("nope",),
    "varchar(3)": ("abcd",),
}

ARRAYS: dict[str, tuple[tuple[Any, ...], tuple[str, ...]]] = {
    "array<int>": (
        ([1, None, -3], [], None),
        ("integer[]", "bigint[]", "numeric[]", "text[]", "double precision[]", "text", "integer"),
    ),
    "array<bigint>": (([9223372036854775807, 0],), ("bigint[]", "integer[]", "numeric[]")),
    "array<double>": (
        ([0.1 + 0.2, math.nan, -math.inf], [1e300]),
        ("double precision[]", "real[]", "numeric[]", "text[]", "text"),
    ),
    "array<float>": (([1.01, 0.3, -0.0],), ("real[]", "double precision[]", "numeric[]", "varchar(80)")),
    "array<decimal(10,3)>": (
        ([Decimal("1.250"), None, Decimal("-0.001")],),
        ("numeric[]", "numeric(10,2)[]", "integer[]", "text"),
    ),
    "array<boolean>": (([True, None, False],), ("boolean[]", "text[]", "text")),
    "array<string>": (
        (
            ["a,b", 'c"d', "e\\f", "{x}", "NULL", "", None, "tab\tnl\n", "plain", "nul"],
            ["(1,2),(3,4)", "(5,6),(7,8)"],
        ),
        ("text[]", "varchar(20)[]", "box[]", "json[]", "text", "json"),
    ),
    "array<date>": (([date(2024, 1, 1), None, date(1, 1, 1)],), ("date[]", "timestamp[]", "text[]", "text")),
    "array<timestamp>": (
        ([datetime(2024, 1, 1, 1, 2, 3, 4), None],),
        ("timestamp[]", "timestamptz[]", "date[]"),
    ),
    "array<binary>": (([b"\x00\x01", None],), ("bytea[]",)),
    "array<array<int>>": (([[1, 2], [3, 4]], [[None, 5], [6, 7]]), ("integer[]", "bigint[]", "text")),
}


def matrix() -> list[Case]:
    cases = []
    for spark_type, values in VALUES.items():
        if spark_type == "string":  # any column: parsed as its type
            for column, parsed in STRINGS_FOR.items():
                cases.append(Case("string", parsed, column, reference=parsed))
            for column in TEXTS:
                cases.append(Case("string", values, column))
            for column, bad in BAD_STRINGS.items():
                cases.append(Case("string", bad, column))
            continue
        for column in COLUMNS[spark_type]:
            cases.append(Case(spark_type, values, column))
    for spark_type, (values, columns) in ARRAYS.items():
        for column in columns:
            strings = spark_type == "array<string>" and column in ("box[]", "json[]", "json")
            chosen = (values[1],) if strings else values
            # pgjdbc cannot bind arrays of timestamps or of byte arrays: Spark's writer fails on every one.
            bound = spark_type in ("array<timestamp>", "array<binary>")
            cases.append(Case(spark_type, chosen, column, reference=chosen if strings else None, bound=bound))
    return cases


# -- running both writers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def suite_cases(spark, opts, admin_module) -> list[Case]:
    """Every column of the suite's tables as Spark reads it, to be written back into its own type."""
    admin = admin_module
    admin.execute("DROP SCHEMA IF EXISTS spark_suite CASCADE")
    admin.execute("CREATE SCHEMA spark_suite")
    for statement in SUITE:
        admin.execute(statement)
    admin.execute("GRANT USAGE ON SCHEMA spark_suite TO PUBLIC")
    admin.execute("GRANT SELECT ON ALL TABLES IN SCHEMA spark_suite TO PUBLIC")
    cases = []
    for table in SUITE_TABLES:
        types = dict(
            admin.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                (f"spark_suite.{table}",),
            ).fetchall()
        )
        if (
            SPARK_MAJOR < 4
        ):  # Spark 3.5's reader pads a bpchar without length to 2^31 characters: the JVM dies
            types = {name: type_ for name, type_ in types.items() if type_ not in ("bpchar", "bpchar[]")}
        read = read_suite(spark, opts, table, list(types))
        if (
            read is None
        ):  # a column this Spark's reader cannot read (3.5: bit(n)[]): read the others one by one
            read = [
                field
                for name in types
                if (found := read_suite(spark, opts, table, [name]))
                for field in found
            ]
        for name, spark_type, values in read:
            cases.append(Case(spark_type, values, types[name], source=f"{table}.{name}"))
    return cases


def read_suite(spark, opts, table: str, names: list[str]) -> list[tuple[str, str, tuple[Any, ...]]] | None:
    """Columns of a suite table as Spark reads them (name, Spark type, values in row order), or None."""
    columns = ", ".join(f'"{name}"' for name in names)
    ordered = f"(SELECT row_number() OVER () - 1 AS lakebase_n, {columns} FROM spark_suite.{table}) q"
    try:
        df = spark.read.format("jdbc").options(**opts).option("dbtable", ordered).load()
        rows = df.orderBy("lakebase_n").collect()
    except Exception:
        return None
    return [
        (field.name, field.dataType.simpleString(), tuple(row[field.name] for row in rows))
        for field in df.schema.fields[1:]
    ]


@pytest.fixture(scope="module")
def admin_module(emulator):
    import psycopg

    with psycopg.connect(emulator.admin_conninfo(DATABASE), autocommit=True) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(emulator.user_name)))
        yield conn


def spark_writer(opts) -> Any:
    def run_spark(df, table) -> None:
        df.write.format("jdbc").options(**opts).option("dbtable", table).mode("append").save()

    return run_spark


def our_writer(broker_service) -> Any:
    def run_ours(df, table) -> None:
        write(df, table, endpoint=ENDPOINT, database=DATABASE, broker=broker_service)

    return run_ours


def reference(admin, case: Case, index: int) -> tuple[str, str] | None:
    """Where the values the column must hold are: the suite's source column, or the strings parsed by COPY."""
    if case.source != "matrix":
        table, column = case.source.split(".")
        return (f"(SELECT row_number() OVER () - 1 AS n, {column} FROM spark_suite.{table}) r", column)
    if case.reference is None and not case.bound:
        return None
    name = f"public.diff_ref_{index}"
    admin.execute(f"DROP TABLE IF EXISTS {name}")
    admin.execute(f"CREATE TABLE {name} (n int, v {case.column})")
    if case.bound:
        for n, value in enumerate(case.values):
            admin.execute(f"INSERT INTO {name} VALUES (%s, %s)", (n, value))
        return (name, "v")
    for n, value in enumerate(case.reference or ()):
        if isinstance(value, list):  # each element parsed as the element type (box arrays use ';' between)
            admin.execute(f"INSERT INTO {name} VALUES (%s, %s::text[]::{case.column})", (n, value))
        else:
            with admin.cursor().copy(f"COPY {name} (n, v) FROM STDIN") as copy:
                copy.write_row((n, value))
    return (name, "v")


def parsed_by_postgres(case: Case) -> bool:
    """Strings: pgjdbc binds them as varchar (text[] for arrays), which Spark's writer cannot assign to most
    column types, and which this writer parses as the column's type instead."""
    return case.spark_type in ("string", "array<string>")


def assignable(admin, source: str, column: str) -> bool:
    """Whether Postgres assigns a ``source`` parameter to a column of type ``column`` (prepared only)."""
    from psycopg import errors

    admin.execute("DROP TABLE IF EXISTS public.diff_probe")
    admin.execute(f"CREATE TABLE public.diff_probe (v {column})")
    try:
        with admin.transaction():
            admin.execute(f"PREPARE diff_probe AS INSERT INTO public.diff_probe VALUES ($1::{source})")
            admin.execute("DEALLOCATE diff_probe")
    except (errors.DatatypeMismatch, errors.CannotCoerce):
        return False
    return True


def test_writes_equal_sparks_own_writer_for_every_type_pair(
    spark, opts, broker_service, admin_module, suite_cases
) -> None:
    admin = admin_module
    cases = suite_cases + matrix()
    # Spark's writer is run on every case but strings into a column Postgres cannot assign varchar to: those
    # fail in Spark by rule (one job each), and this writer must hold what Postgres' own parsing gives.
    refused = {
        i
        for i, case in enumerate(cases)
        if parsed_by_postgres(case)
        and not assignable(admin, "text[]" if case.spark_type.startswith("array") else "varchar", case.column)
    }
    ours = run(cases, admin, spark, our_writer(broker_service), "diff_ours")
    in_spark = [i for i in range(len(cases)) if i not in refused]
    # What ours refused is written one case per job in Spark too (it most likely fails there): a failure then
    # costs one job, not a narrowing. Every verdict below is still Spark's own.
    alone = [k for k, i in enumerate(in_spark) if i in ours.failed]
    spark_run = run([cases[i] for i in in_spark], admin, spark, spark_writer(opts), "diff_spark", alone=alone)
    spark_side = Outcome(
        {in_spark[k]: where for k, where in spark_run.written.items()},
        {in_spark[k]: error for k, error in spark_run.failed.items()},
        spark_run.jobs,
    )
    for i in refused:
        spark_side.failed[i] = "not run: Postgres does not assign varchar to the column"
    problems: list[str] = []
    for i, case in enumerate(cases):
        rows = len(case.values)
        theirs, mine = spark_side.written.get(i), ours.written.get(i)
        if theirs and mine:
            diff = differs(admin, theirs, mine, rows)
            if diff:
                problems.append(f"{case.label()}: values differ {diff[:6]}")
        elif theirs and not mine:
            problems.append(f"{case.label()}: Spark writes it, ours failed: {ours.failed[i][:300]}")
        elif mine and not theirs:
            problem = compare_with_a_reference(admin, spark, opts, case, i, mine, spark_side.failed[i])
            if problem:
                problems.append(f"{case.label()}: {problem}")
        else:
            message = ours.failed[i]
            if f"c{i}" not in message:
                problems.append(f"{case.label()}: both fail, ours without naming the column: {message[:300]}")
    counts = {
        "cases": len(cases),
        "spark_writes": len(spark_side.written),
        "ours_writes": len(ours.written),
        "both_refuse": len(set(spark_side.failed) & set(ours.failed)),
        "parsed_not_run_in_spark": len(refused),
        "jobs": (spark_side.jobs, ours.jobs),
    }
    print("differential:", counts)  # figures for the notes (pytest -s)
    assert not problems, f"{len(problems)} of {len(cases)} cases differ:\n" + "\n".join(problems)


#: Spark's (or pgjdbc's) own limits, which stop its writer before Postgres sees a value: arrays of arrays
#: (Spark 3.5), arrays of timestamps and of byte arrays (pgjdbc).
SPARK_CANNOT = ("Can't get JDBC type", "Unable to find server array type", "nested inside Object[]")


def compare_with_a_reference(
    admin, spark, opts, case: Case, index: int, mine, spark_error: str
) -> str | None:
    """Ours wrote a case Spark's writer did not: say what differs from what the column should hold."""
    rows = len(case.values)
    if any(limit in spark_error for limit in SPARK_CANNOT):  # Spark's writer cannot bind this type at all
        case = Case(case.spark_type, case.values, case.column, case.source, bound=True)
    if parsed_by_postgres(case) or case.bound:
        ref = reference(admin, case, index)
        if ref is None:
            return "ours writes strings Postgres cannot parse as the column's type"
        diff = differs(admin, ref, mine, rows)
        return f"values differ from Postgres' own {diff[:6]}" if diff else None
    # Spark binds a NULL with its dialect's type for the Spark type (a tinyint's NULL as smallint, a date's as
    # date), which some columns do not take though they take the values: run Spark without the NULLs.
    values = tuple(v for v in case.values if v is not None)
    alone = run([Case(case.spark_type, values, case.column)], admin, spark, spark_writer(opts), "diff_alone")
    if 0 not in alone.written:
        return f"ours writes what Spark refuses: {spark_error[:300]}"
    diff = differs(admin, alone.written[0], mine, rows, by_row=False)
    return f"values differ {diff[:6]}" if diff else None


def test_dates_and_timestamps_equal_sparks_writer_in_a_jvm_far_from_utc(emulator, tmp_path) -> None:
    """The shared session's JVM runs in UTC, where an offset is always +00: a job of its own runs in
    America/St_Johns (a half-hour offset, daylight saving time, local mean time before 1935)."""
    from ..jobs import run_job

    env = {
        "LAKEBASE_TEST_PAT": emulator.pat,
        "LAKEBASE_TEST_ADMIN": emulator.admin_conninfo(DATABASE),
        "TZ": "America/St_Johns",  # Python's naive datetimes are local times too
    }
    result, _ = run_job("zone_job.py", [emulator.host, ENDPOINT, DATABASE], env=env, signal=tmp_path / "s")
    print("time zones:", {k: v for k, v in result.items() if k != "problems"})  # for the notes (-s)
    assert result["zone"] == "America/St_Johns"
    assert result["spark_writes"] >= 10  # the comparison really ran
    assert result["problems"] == [], "\n".join(result["problems"])
