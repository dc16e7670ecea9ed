"""Writes whose tasks fail upstream of the writer: a UDF raises midway through partition 2, after some
of its Arrow batches reached the writer. Run by writing/test_upstream.py on ``local-cluster`` (executors
in their own JVMs and Python workers) and by datasource/test_remote.py on a Connect server with no jar.

Usage: ``upstream_job.py (--master MASTER | --remote sc://...) HOST ENDPOINT DATABASE WORKDIR``

Every scenario counts rows and distinct ids afterwards: on the first attempt only (Spark retries the
task), and on every attempt (the job fails; a rerun with the same write id, or a restart of the
stream, finishes it). The JVM writer (``lakebase_spark.write``) runs the same scenarios where the
session has the jar. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
from databricks.sdk import WorkspaceClient
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType

import lakebase_spark
from lakebase_spark.datasource import register, source_options
from lakebase_spark.serving.service import BrokerService
from lakebase_spark.sessions import is_connect
from lakebase_spark.tokens.broker import TokenBroker

ROWS = 20_000
PARTITIONS = 4
#: Partition 2 holds ids 10,000-14,999; with 1,000-row Arrow batches, two reach the writer before the UDF
#: raises at its 2,501st row.
FAIL_AT = 12_500
BATCH_ROWS = 1_000
#: Wide enough rows that each batch fills the executor's 64 KiB send buffer (spark.buffer.size) and is
#: sent on its own: smaller batches wait in it for more, and a task failing meanwhile sends none.
PAD = "-" * 100


def flaky(first: tuple[int, ...] = (), every: tuple[int, ...] = ()):  # type: ignore[no-untyped-def]
    """The id, except that a task raises at an id of ``first`` on its first attempt, and at one of
    ``every`` on every attempt."""

    def check(value):  # type: ignore[no-untyped-def]  # hints would make it a pandas UDF
        from pyspark import TaskContext

        context = TaskContext.get()
        if value in every or (value in first and context is not None and context.attemptNumber() == 0):
            raise RuntimeError(f"injected upstream failure at id {value}")
        return value

    return F.udf(check, LongType())


class Job:
    def __init__(self, spark: SparkSession, admin: str, opts: dict[str, str], target: dict[str, Any]):
        self.spark, self.admin, self.opts, self.target = spark, admin, opts, target
        #: Write ids of this run's own: the commit log outlives the tables (another run used the names).
        self.run = uuid.uuid4().hex[:8]

    def id(self, name: str) -> str:
        return f"up-{name}-{self.run}"

    def rows(self, **failures: tuple[int, ...]) -> DataFrame:
        ids = self.spark.range(0, ROWS, numPartitions=PARTITIONS)
        v = F.concat(F.lit("v"), F.col("id"), F.lit(PAD))
        return ids.select(flaky(**failures)("id").alias("id"), v.alias("v"))

    def sql(self, statement: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'SET ROLE "{self.target["user"]}"')
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def fresh(self, table: str, *, key: bool = False, old: int = 0) -> str:
        """An empty table (``old`` rows with ids from 1,000,000, or 0..old-1 for a keyed one)."""
        self.sql(f"DROP TABLE IF EXISTS {table}")
        self.sql(f"CREATE TABLE {table} (id bigint{' PRIMARY KEY' if key else ''}, v text)")
        first = 0 if key else 1_000_000
        if old:
            self.sql(
                f"INSERT INTO {table} SELECT g, 'old' FROM generate_series({first}, {first + old - 1}) g"
            )
        return table

    def held(self, table: str) -> list[int]:
        """Rows, distinct ids, rows still 'old'."""
        (row,) = self.sql(
            f"SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE v = 'old') FROM {table}"
        )
        return [int(v) for v in row]

    def parts(self, write_id: str) -> list[list[int]]:
        """(partition, attempt, rows) of the write's partition markers."""
        return [
            [int(v) for v in row]
            for row in self.sql(
                "SELECT part, attempt, rows FROM public.lakebase_spark_commits "
                f"WHERE write_id = '{write_id}' AND part >= 0 ORDER BY part"
            )
        ]

    def save(self, df: DataFrame, table: str, mode: str = "append", **options: Any) -> str | None:
        """Write through format("lakebase"); the error's first line if it failed."""
        writer = df.write.format("lakebase").options(**self.opts).option("dbtable", table)
        try:
            writer.options(**options).mode(mode).save()
        except Exception as e:
            return first_line(e)
        return None

    def jvm(self, df: DataFrame, table: str, **options: Any) -> str | None:
        """Write through lakebase_spark.write (the JVM COPY writer)."""
        try:
            lakebase_spark.write(df, table, **self.target["write"], **options)
        except Exception as e:
            return first_line(e)
        return None


def first_line(e: Exception) -> str:
    """The line of an error that says what failed (the UDF's, or the writer's own), bounded."""
    lines = [line for line in str(e).splitlines() if "injected" in line or "lakebase" in line]
    return (lines[0] if lines else str(e))[:400]


def scenarios(job: Job, workdir: Path, jvm: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    first, every, clean = job.rows(first=(FAIL_AT,)), job.rows(every=(FAIL_AT,)), job.rows()

    def outcome(write: Any, df: DataFrame, table: str, *args: str, **options: str) -> dict[str, Any]:
        return {"error": write(df, table, *args, **options), "held": job.held(table)}

    # The first attempt of partition 2 fails midway; Spark retries it.
    table = job.fresh("public.up_append")
    out["append"] = outcome(job.save, first, table, writeId=job.id("append"))
    out["append"]["parts"] = job.parts(job.id("append"))
    out["overwrite"] = outcome(job.save, first, job.fresh("public.up_overwrite", old=500), "overwrite")
    upsert = job.fresh("public.up_upsert", key=True, old=ROWS // 2)
    out["upsert"] = outcome(job.save, first, upsert, upsertKey="id")

    # Partition 2 fails on every attempt: the job fails, then a rerun with the same write id finishes it.
    table = job.fresh("public.up_append_every")
    failed = outcome(job.save, every, table, writeId=job.id("every"))
    failed["parts"] = job.parts(job.id("every"))
    rerun = outcome(job.save, clean, table, writeId=job.id("every"))
    out["append_every"] = {"failed": failed, "rerun": rerun}
    table = job.fresh("public.up_overwrite_every", old=500)
    out["overwrite_every"] = {
        run: outcome(job.save, df, table, "overwrite", writeId=job.id("ow-every"))
        for run, df in (("failed", every), ("rerun", clean))
    }

    out["stream"] = stream(job, workdir)
    if jvm:  # the JVM writer, through the same failures
        out["jvm"] = outcome(job.jvm, first, job.fresh("public.up_jvm"))
        table = job.fresh("public.up_jvm_every")
        out["jvm_every"] = {
            run: outcome(job.jvm, df, table, write_id=job.id("jvm-every"))
            for run, df in (("failed", every), ("rerun", clean))
        }
    return out


def stream(job: Job, workdir: Path) -> dict[str, Any]:
    """writeStream.format("lakebase"), a file of 5,000 ids a micro-batch (one partition): batch 1's first
    attempt fails upstream (Spark retries it); batch 2 fails on every attempt, so the query stops, and a
    restart from its checkpoint runs batch 2 again, then batch 3."""
    source, checkpoint = workdir / "stream-in", workdir / "stream-checkpoint"
    source.mkdir(parents=True)
    table = job.fresh("public.up_stream")
    per_file = ROWS // 4

    def add(number: int) -> None:
        ids = range(number * per_file, (number + 1) * per_file)
        (source / f"part-{number:04d}.json").write_text("".join(json.dumps({"id": i}) + "\n" for i in ids))

    def run(**failures: tuple[int, ...]) -> str | None:
        files = job.spark.readStream.schema("id long").option("maxFilesPerTrigger", 1).json(str(source))
        rows = files.select(flaky(**failures)("id").alias("id"), F.lit("s" + PAD).alias("v"))
        writer = rows.writeStream.format("lakebase").options(**job.opts).option("dbtable", table)
        query = writer.option("checkpointLocation", str(checkpoint)).trigger(availableNow=True).start()
        try:
            query.awaitTermination(300)
        except Exception as e:
            return first_line(e)
        return None

    for n in range(3):
        add(n)
    stopped = run(first=(per_file + per_file // 2,), every=(2 * per_file + per_file // 2,))
    after_stop = job.held(table)
    add(3)
    restarted = run()
    batches = sorted(int(p.name) for p in (checkpoint / "commits").iterdir() if p.name.isdigit())
    return {"stopped": stopped, "after_stop": after_stop, "restarted": restarted, "batches": batches,
            "held": job.held(table)}  # fmt: skip


def main() -> None:
    how, where, host, endpoint, database, workdir = sys.argv[1:]
    workspace = WorkspaceClient(host=host, token=os.environ["LAKEBASE_TEST_PAT"])
    if how == "--remote":
        spark = SparkSession.builder.remote(where).appName("lakebase-spark upstream failures").getOrCreate()
    else:
        from lakebase_spark.testing.pytest_plugin import local_spark_builder

        conf = {"spark.task.maxFailures": "4", "spark.executor.memory": "768m"}
        spark = local_spark_builder("lakebase-spark upstream failures", conf, master=where).getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
    # Small Arrow batches: a partition's first batches reach the writer before its task fails.
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(BATCH_ROWS))
    register(spark)
    service = BrokerService(TokenBroker(workspace))
    opts = source_options(endpoint, database=database, broker=service)
    target = {
        "user": service.broker.principal,
        "write": {"endpoint": endpoint, "database": database, "workspace_client": workspace},
    }
    job = Job(spark, os.environ["LAKEBASE_TEST_ADMIN"], dict(opts), target)
    try:
        out = scenarios(job, Path(workdir), jvm=not is_connect(spark))
        out["connect"] = is_connect(spark)
        print(json.dumps(out))
    finally:
        spark.stop()
        service.stop()


if __name__ == "__main__":
    main()
