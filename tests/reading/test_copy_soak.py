"""The COPY reader over a long stream: one partition of 20 million rows over TLS in one COPY (pgjdbc's
``copyOut`` has had "PGStream is closed" reports past ~0.8M rows, #2920), every row once, with column
batches reused (the executor's memory does not grow with the rows)."""

from __future__ import annotations

import pytest
from psycopg import sql
from pyspark.sql import functions as F

import lakebase_spark

from ..conftest import DATABASE, ENDPOINT

pytestmark = [pytest.mark.spark, pytest.mark.postgres, pytest.mark.e2e, pytest.mark.soak]
ROWS = 20_000_000
PRIME = 1_000_000_007


def test_twenty_million_rows_in_one_copy_read_each_once(spark, broker_service, admin, emulator) -> None:
    admin.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(emulator.user_name)))
    admin.execute("DROP TABLE IF EXISTS cr_soak")
    admin.execute("CREATE UNLOGGED TABLE cr_soak (id bigint, v int)")  # no WAL to write: the test only reads
    try:
        admin.execute(f"INSERT INTO cr_soak SELECT g, g % 1000 FROM generate_series(1, {ROWS}) g")
        df = lakebase_spark.read(
            spark, "public.cr_soak", endpoint=ENDPOINT, database=DATABASE, broker=broker_service, partitions=1
        )
        assert "lakebase COPY" in df._jdf.queryExecution().executedPlan().toString()
        assert df.rdd.getNumPartitions() == 1
        got = df.agg(
            F.count("*"),
            F.sum("id"),
            F.sum((F.col("id") * F.col("id")) % PRIME),
            F.min("id"),
            F.max("id"),
            F.sum("v"),
        ).first()
        # Postgres' own sums of the same rows: a duplicate and a loss would have to cancel in all of them.
        squares, vs = admin.execute(f"SELECT sum(id * id % {PRIME}), sum(v) FROM cr_soak").fetchone()
        assert tuple(got) == (ROWS, ROWS * (ROWS + 1) // 2, squares, 1, ROWS, vs)
    finally:
        admin.execute("DROP TABLE IF EXISTS cr_soak")
