"""The JVM's binary-COPY reader (``lakebase_spark.read``'s default): every type gives the JDBC reader's
value, edge values and errors included; what it cannot decode goes to the JDBC reader; filters and
column pruning reach Postgres; a COPY cut short closes its connection. The same comparison in a JVM
time zone with DST and a local mean time: jobs/copy_read_job.py; an executor killed mid-read:
spark/test_cluster.py."""

from __future__ import annotations

import re
import time

import pytest
from psycopg import sql

import lakebase_spark

from ..conftest import DATABASE, ENDPOINT
from ..copy_reads import DECODED, FALLBACK, differences, make_table, read_both, uses_copy

pytestmark = [pytest.mark.spark, pytest.mark.postgres, pytest.mark.e2e]


@pytest.fixture
def db(admin, emulator):
    admin.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(emulator.user_name)))
    return admin


def both(spark, broker_service, table, **kwargs):
    return read_both(spark, table, endpoint=ENDPOINT, database=DATABASE, broker=broker_service, **kwargs)


@pytest.mark.parametrize("partitions", [3])
def test_every_type_reads_as_the_jdbc_reader_reads_it(spark, broker_service, db, partitions) -> None:
    make_table(db, "cr_decoded", DECODED)
    copy, jdbc = both(spark, broker_service, "public.cr_decoded", key="id", partitions=partitions)
    assert uses_copy(copy)
    assert not uses_copy(jdbc)
    assert differences(copy, jdbc) == []
    assert copy.count() == max(len(v) for _, v in DECODED) + 1


def test_a_custom_schema_rounds_widens_and_reads_as_text_as_jdbc_does(spark, broker_service, db) -> None:
    names = make_table(db, "cr_custom", DECODED)
    kinds = {kind: name for name, (kind, _) in zip(names, DECODED, strict=True)}
    custom = (
        f"{kinds['numeric(12,2)']} DECIMAL(14,1), {kinds['numeric']} DECIMAL(30,3), "
        f"{kinds['smallint']} BIGINT, {kinds['integer']} BIGINT, {kinds['numeric(18,4)']} STRING, "
        f"{kinds['date']} STRING"
    )
    copy, jdbc = both(spark, broker_service, "public.cr_custom", key="id", options={"customSchema": custom})
    assert uses_copy(copy)
    assert dict(copy.dtypes)[kinds["numeric(12,2)"]] == "decimal(14,1)"
    assert differences(copy, jdbc) == []


def test_a_value_that_does_not_fit_fails_with_the_jdbc_readers_error(spark, broker_service, db) -> None:
    make_table(db, "cr_overflow", (("numeric(12,2)", ("9999999999.99",)),))
    copy, jdbc = both(
        spark, broker_service, "public.cr_overflow", key="id", options={"customSchema": "c0 DECIMAL(4,1)"}
    )
    assert failure(copy) == failure(jdbc)
    assert "precision" in failure(copy).lower() or "9999999999.99" in failure(copy)


def test_infinite_dates_read_or_fail_as_the_jdbc_reader_does(spark, broker_service, db) -> None:
    """Spark 4's Postgres dialect maps date ±infinity to its extremes; Spark 3.5 overflows on them."""
    make_table(db, "cr_infinite", (("date", ("'infinity'", "'-infinity'", "'2024-01-01'")),))
    copy, jdbc = both(spark, broker_service, "public.cr_infinite", key="id")
    try:
        want = differences(jdbc, jdbc)
    except Exception:  # the JDBC reader failing is what the COPY reader must match
        assert failure(copy) == failure(jdbc)
    else:
        assert want == []
        assert differences(copy, jdbc) == []


def failure(df) -> str:
    """The task's error as Spark reports it: its exception and message, without task and stage ids."""
    with pytest.raises(Exception) as failed:  # noqa: PT011 - compared by the caller
        df.collect()
    text = str(failed.value)
    first = re.search(r"most recent failure: [^)]*\)[^)]*\): ([^\n]+)", text)
    return (first.group(1) if first else text.splitlines()[0])[:300]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_numeric_nan_and_infinity_fail_naming_the_column_and_the_fix(
    spark, broker_service, db, value
) -> None:
    """Spark's decimal has no NaN or infinity. The JDBC reader fails too, in pgjdbc's words (a
    ClassCastException for NaN, "invalid sign" for the infinities); the COPY reader says what and how."""
    make_table(db, "cr_nan", (("numeric", (f"'{value}'",)),))
    copy, jdbc = both(spark, broker_service, "public.cr_nan", key="id")
    with pytest.raises(Exception) as failed:  # noqa: PT011 - pgjdbc's words, checked below
        jdbc.collect()
    assert "BigDecimal" in str(failed.value) or "numeric" in str(failed.value)
    with pytest.raises(Exception, match=f"column c0 holds the numeric {value}, which a Spark decimal cannot"):
        copy.collect()


def test_types_without_a_decoder_read_through_the_jdbc_reader(spark, broker_service, db, caplog) -> None:
    make_table(db, "cr_fallback", FALLBACK)
    with caplog.at_level("INFO", logger="lakebase_spark"):
        copy, jdbc = both(spark, broker_service, "public.cr_fallback", key="id")
    assert not uses_copy(copy)
    assert "with the JDBC reader: column 'c0'" in caplog.text
    assert differences(copy, jdbc) == []
    # Named columns it can decode: the COPY reader again.
    assert not uses_copy(copy.select("id", "c3"))  # the choice is made when the read is planned
    pruned = lakebase_spark.read(
        spark, "public.cr_fallback", endpoint=ENDPOINT, database=DATABASE, broker=broker_service, key="id",
        options={"customSchema": "c2 STRING"},
    )  # fmt: skip
    assert not uses_copy(pruned)  # the arrays still have no decoder


def test_empty_tables_and_partitions_read_as_nothing(spark, broker_service, db) -> None:
    db.execute("DROP TABLE IF EXISTS cr_empty")
    db.execute("CREATE TABLE cr_empty (id bigint PRIMARY KEY, v text)")
    copy, jdbc = both(spark, broker_service, "public.cr_empty", key="id", partitions=4)
    assert uses_copy(copy)
    assert copy.collect() == [] == jdbc.collect()
    db.execute("INSERT INTO cr_empty VALUES (1, 'one')")
    copy, _ = both(spark, broker_service, "public.cr_empty", partitions=8)  # page ranges, most empty
    assert [tuple(r) for r in copy.collect()] == [(1, "one")]


def test_filters_and_pruning_reach_postgres_and_change_no_result(spark, broker_service, db) -> None:
    db.execute("DROP TABLE IF EXISTS cr_filtered")
    db.execute(
        "CREATE TABLE cr_filtered AS SELECT g AS id, g % 10 AS k, (g * 0.5)::numeric(10,2) AS amount,"
        " 'n' || g AS note, date '2024-01-01' + g % 30 AS day, (g % 3 = 0) AS flag, g * 0.25 AS f"
        " FROM generate_series(1, 5000) g"
    )
    copy, jdbc = both(spark, broker_service, "public.cr_filtered", key="id", partitions=3)
    queries = [
        "k = 3 AND amount > 100",
        "note = 'n42' OR k IN (1, 2)",
        "day >= DATE'2024-01-20' AND NOT flag",
        "note > 'n9'",  # text order: left to Spark (Postgres' collation is not Spark's byte order)
        "f < 10.5 AND k IS NOT NULL",
        "amount IS NULL",
    ]
    for where in queries:
        got = sorted(tuple(r) for r in copy.filter(where).select("id", "note").collect())
        want = sorted(tuple(r) for r in jdbc.filter(where).select("id", "note").collect())
        assert got == want, where
    plan = copy.filter("k = 3 AND amount > 100").select("id")._jdf.queryExecution().executedPlan().toString()
    assert "EqualTo(k,3)" in plan
    assert "struct<id:" in plan
    assert "note" not in plan
    text_plan = copy.filter("note > 'n9'")._jdf.queryExecution().executedPlan().toString()
    assert "GreaterThan(note" not in text_plan.split("pushed filters")[1]


def test_a_copy_cut_short_closes_its_connection(spark, broker_service, db, emulator) -> None:
    db.execute("DROP TABLE IF EXISTS cr_long")
    db.execute("CREATE TABLE cr_long AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 300000) g")
    copy, _ = both(spark, broker_service, "public.cr_long", partitions=2, consistent=False)
    assert len(copy.limit(5).collect()) == 5

    def copies() -> int:
        return db.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE query LIKE 'COPY (SELECT%%cr_long%%' AND pid <> pg_backend_pid()"
        ).fetchone()[0]

    deadline = time.monotonic() + 10
    while copies() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert copies() == 0
    assert copy.count() == 300000  # and the next read is whole
