"""Spark reads and writes through ``connectionProvider=lakebase`` against the emulator's real Postgres."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pytest
from psycopg import sql

from lakebase_spark import BrokerService, TokenBroker, lakebase_options

from ..conftest import DATABASE, ENDPOINT
from ..frames import assert_same_rows
from ..jdbc_reads import partitioned_read

pytestmark = [pytest.mark.spark, pytest.mark.postgres, pytest.mark.e2e]

UTC = dt.timezone.utc


def as_user(admin, user: str) -> None:
    """Make the admin session act as the principal, so the tables it creates belong to the principal."""
    admin.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(user)))


@pytest.fixture
def orders(admin, emulator):
    as_user(admin, emulator.user_name)
    admin.execute("DROP TABLE IF EXISTS public.orders")
    admin.execute("CREATE TABLE public.orders (id bigint PRIMARY KEY, customer text, amount numeric(12,2))")
    admin.execute(
        "INSERT INTO public.orders SELECT g, 'customer-' || (g % 7), g * 1.25 FROM generate_series(1, 1000) g"
    )
    return "public.orders"


def expected_orders(spark):
    rows = [(i, f"customer-{i % 7}", Decimal(i * 125) / 100) for i in range(1, 1001)]
    return spark.createDataFrame(rows, "id long, customer string, amount decimal(12,2)")


def test_read_through_the_provider(spark, opts, orders, emulator) -> None:
    logins = emulator.tokens.stats.logins_ok
    df = spark.read.format("jdbc").options(**opts).option("dbtable", orders).load()
    assert_same_rows(df, expected_orders(spark))
    assert emulator.tokens.stats.logins_ok > logins  # it really logged in with a minted token


def test_partitioned_read_opens_a_connection_per_partition(spark, opts, orders, emulator) -> None:
    logins = emulator.tokens.stats.logins_ok
    df = partitioned_read(spark, opts, orders, upper=1001, partitions=4)
    assert df.rdd.getNumPartitions() == 4
    assert_same_rows(df, expected_orders(spark))
    # One login per partition (the schema was resolved by an earlier query on the driver).
    assert emulator.tokens.stats.logins_ok - logins >= 4


def test_write_append_and_overwrite(spark, opts, admin, emulator) -> None:
    as_user(admin, emulator.user_name)
    admin.execute("DROP TABLE IF EXISTS public.written")
    df = expected_orders(spark)
    df.write.format("jdbc").options(**opts).option("dbtable", "public.written").mode("append").save()
    df.write.format("jdbc").options(**opts).option("dbtable", "public.written").mode("append").save()
    back = spark.read.format("jdbc").options(**opts).option("dbtable", "public.written").load()
    assert_same_rows(back, df.union(df))

    half = df.where("id <= 500")
    half.write.format("jdbc").options(**opts).option("dbtable", "public.written").mode("overwrite").save()
    back = spark.read.format("jdbc").options(**opts).option("dbtable", "public.written").load()
    assert_same_rows(back, half)
    assert admin.execute("SELECT count(*) FROM public.written").fetchone()[0] == 500


def test_types_survive_the_round_trip(spark, opts, admin, emulator) -> None:
    as_user(admin, emulator.user_name)
    admin.execute("DROP TABLE IF EXISTS public.typed_src, public.typed_dst")
    admin.execute(
        "CREATE TABLE public.typed_src (k bigint, n numeric(20,6), t text, ts timestamptz, d date, b boolean)"
    )
    rows = [
        (
            1,
            Decimal("12345678901234.123456"),
            "grüße, 東京, 🚀",
            dt.datetime(2026, 11, 22, 3, 4, 5, 123456, UTC),
            dt.date(2026, 2, 28),
            True,
        ),
        (
            -9223372036854775808,
            Decimal("-0.000001"),
            "",
            dt.datetime(1970, 1, 1, tzinfo=UTC),
            dt.date(1, 1, 1),
            False,
        ),
        (None, None, None, None, None, None),
    ]
    with admin.cursor() as cur:
        cur.executemany("INSERT INTO public.typed_src VALUES (%s, %s, %s, %s, %s, %s)", rows)
    src = spark.read.format("jdbc").options(**opts).option("dbtable", "public.typed_src").load()
    assert [f.dataType.simpleString() for f in src.schema.fields] == [
        "bigint",
        "decimal(20,6)",
        "string",
        "timestamp",
        "date",
        "boolean",
    ]
    src.write.format("jdbc").options(**opts).option("dbtable", "public.typed_dst").mode("overwrite").save()
    # Compare in Postgres itself, so no Spark conversion can hide a difference on either side.
    diff = admin.execute(
        "SELECT count(*) FROM ((SELECT * FROM public.typed_src EXCEPT ALL SELECT * FROM public.typed_dst) "
        "UNION ALL (SELECT * FROM public.typed_dst EXCEPT ALL SELECT * FROM public.typed_src)) x"
    ).fetchone()[0]
    assert diff == 0
    got = admin.execute("SELECT t FROM public.typed_dst WHERE k = 1").fetchone()[0]
    assert got == "grüße, 東京, 🚀"
    assert (
        admin.execute("SELECT count(*) FROM public.typed_dst WHERE k IS NULL AND b IS NULL").fetchone()[0]
        == 1
    )


def test_partitions_that_start_after_the_first_token_expired(spark, emulator, workspace, orders) -> None:
    """With 3-second tokens, later partitions need tokens minted after the first one expired."""
    old_ttl = emulator.token_ttl
    emulator.token_ttl = 3
    try:
        with BrokerService(TokenBroker(workspace)) as service:
            opts = lakebase_options(ENDPOINT, database=DATABASE, broker=service)
            first_expiry = time.time() + 3
            # Each partition's query sleeps 1.5 s before returning rows: 8 partitions on 2 cores
            # start in 4 waves over ~6 s, well past the first token's expiry.
            slow = "(SELECT o.* FROM public.orders o, (SELECT pg_sleep(1.5)) s) AS slow"
            df = partitioned_read(spark, opts, slow, upper=1001, partitions=8)
            assert df.count() == 1000
            assert time.time() > first_expiry + 1
            assert service.broker.stats.mints >= 2  # refreshed mid-job instead of failing
            assert service.broker.stats.mints <= 6  # bounded by time, not by connection count
    finally:
        emulator.token_ttl = old_ttl


def test_py4j_debug_logs_never_hold_the_broker_secret(spark, opts, orders, caplog) -> None:
    """py4j logs every command it sends to the JVM at DEBUG, Spark options included."""
    import logging

    caplog.set_level(logging.DEBUG, logger="py4j")
    rows = spark.read.format("jdbc").options(**opts).option("dbtable", orders).load().count()
    assert rows == 1000
    commands = [r.getMessage() for r in caplog.records if r.name.startswith("py4j")]
    assert any("lakebase.broker.secret" in c for c in commands)  # the options really were logged...
    secret = opts["lakebase.broker.secret"]
    assert all(secret not in c for c in commands)  # ...with the secret masked
    assert secret not in caplog.text
