"""The COPY writer (``lakebase_spark.write``) against the emulator's real Postgres with real Spark."""

from __future__ import annotations

import pytest
from psycopg import sql

from lakebase_spark import WriteResult, write

from .conftest import DATABASE, ENDPOINT

pytestmark = [pytest.mark.spark, pytest.mark.postgres]


@pytest.fixture
def target(broker_service):
    def run(df, table, **kwargs) -> WriteResult:
        return write(df, table, endpoint=ENDPOINT, database=DATABASE, broker=broker_service, **kwargs)

    return run


def as_user(admin, emulator) -> None:
    admin.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(emulator.user_name)))


def test_append_creates_the_table_and_writes_every_row(spark, target, admin, emulator) -> None:
    as_user(admin, emulator)
    admin.execute("DROP TABLE IF EXISTS public.w_basic")
    df = spark.range(0, 10_000, numPartitions=4).selectExpr("id", "concat('v', id) AS v")
    result = target(df, "public.w_basic")
    assert result.rows == 10_000
    assert admin.execute("SELECT count(*), count(DISTINCT id) FROM public.w_basic").fetchone() == (10_000, 10_000)
