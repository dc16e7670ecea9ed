"""The jar-free path through a Spark Connect server with no jar and no JDBC driver, run by
datasource/test_remote.py in a process of its own.

Usage: ``jarfree_job.py REMOTE HOST ENDPOINT DATABASE WORKDIR SHARD...`` (the shards' databases exist).
The driver's address is declared foreign (as for Databricks Connect on a laptop), so
``source_options`` mints a token that travels with the job. Writes in every mode (one append with a
task that fails on its first attempt, midway through its rows), reads back by pages, by key and with
pushed filters, writes and reads a sharded table, streams files into a table and runs its last
micro-batch again, and prints one JSON line of what it saw.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from pathlib import Path

from databricks.sdk import WorkspaceClient
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType

from lakebase_spark import LakebaseSparkError, sessions
from lakebase_spark.datasource import register, source_options
from lakebase_spark.datasource.options import TOKEN_EXPIRES, TOKEN_FILE
from lakebase_spark.serving.service import BrokerService
from lakebase_spark.sessions import is_connect
from lakebase_spark.tokens.broker import TokenBroker

ROWS = 10_000


def fails_once(value):  # type: ignore[no-untyped-def]  # hints would make it a pandas UDF
    """Partition 2's first attempt fails after half its rows went into its COPY."""
    from pyspark import TaskContext

    context = TaskContext.get()
    first_attempt = context is not None and context.partitionId() == 2 and context.attemptNumber() == 0
    if first_attempt and value % (ROWS // 4) == ROWS // 8:
        raise RuntimeError("injected failure midway through the partition")
    return value


def main() -> None:
    remote, host, endpoint, database, workdir, *shards = sys.argv[1:]
    workspace = WorkspaceClient(host=host, token=os.environ["LAKEBASE_TEST_PAT"])
    spark = SparkSession.builder.remote(remote).appName("lakebase-spark jar-free test").getOrCreate()
    out: dict[str, object] = {"connect": is_connect(spark)}
    # One machine cannot host a driver on another (Spark must reach its own driver), so only the network
    # fact is replaced: the driver's address is not this machine's, as for Databricks Connect on a laptop.
    sessions._is_local_address = lambda host: False
    register(spark)
    tokens = TokenBroker(workspace)
    opts = source_options(endpoint, database=database, broker=BrokerService(tokens))  # not started
    out["credentials"] = "token" if TOKEN_FILE in opts else "broker"
    # the token itself, to look for: the one the client minted (the job's options only name a file)
    out["token"] = tokens.credential(endpoint=endpoint).token.reveal()

    def load(**options: str):
        return spark.read.format("lakebase").options(**opts).options(**options).load()

    def save(df, mode: str = "append", **options: str) -> None:
        df.write.format("lakebase").options(**opts).options(**options).mode(mode).save()

    def seen(table: str, **options: str) -> list[int]:
        df = load(dbtable=table, **options)
        row = df.agg(F.count("*"), F.countDistinct("id"), F.sum("id")).collect()[0]
        return [int(row[0]), int(row[1]), int(row[2] or 0)]

    rows = spark.range(0, ROWS, numPartitions=4).selectExpr("id", "concat('v', id) AS v")
    save(rows, "overwrite", dbtable="public.jf_rows")
    out["overwrite"] = seen("public.jf_rows", numPartitions="4")
    flaky = F.udf(fails_once, LongType())
    more = spark.range(ROWS, 2 * ROWS, numPartitions=4).select(flaky("id").alias("id"), F.lit("a").alias("v"))
    save(more, dbtable="public.jf_rows", writeId="jf-append-retried")
    out["append_retried"] = seen("public.jf_rows", numPartitions="3", partitionColumn="id")
    save(more, dbtable="public.jf_rows", writeId="jf-append-retried")  # a rerun: nothing twice
    out["append_rerun"] = seen("public.jf_rows", numPartitions="5", partitionColumn="v")
    changed = spark.range(ROWS - 500, ROWS + 500, numPartitions=2).selectExpr("id", "'u' AS v")
    save(changed, dbtable="public.jf_rows", upsertKey="id")
    out["upsert"] = seen("public.jf_rows", numPartitions="4")
    out["upserted"] = load(dbtable="public.jf_rows").where("v = 'u'").count()
    out["pushed_query"] = load(query="SELECT id FROM public.jf_rows WHERE id < 100").count()

    # Pushed filters: the rows Spark's own evaluation of the same condition returns.
    condition = "id >= 100 AND id < 300 AND v LIKE 'v1%' AND v IS NOT NULL"
    pushed = load(dbtable="public.jf_rows", pushFilters="true").where(condition)
    kept = load(dbtable="public.jf_rows").where(condition)
    out["pushdown"] = [sorted(r.id for r in pushed.collect()), sorted(r.id for r in kept.collect())]
    out["consistent"] = consistent(spark, endpoint, database, BrokerService(tokens), save, seen)
    out["sharded"] = sharded(spark, endpoint, shards, BrokerService(tokens))
    out["stream"] = stream(spark, opts, Path(workdir))

    plan = io.StringIO()
    with contextlib.redirect_stdout(plan):
        for mode in ("simple", "extended", "formatted", "cost"):
            load(dbtable="public.jf_rows").explain(mode)
    out["explain"] = plan.getvalue()

    # A task that starts after the carried token's life: refused with the limit and the alternatives.
    late = dict(opts, **{TOKEN_EXPIRES: f"{time.time() + 5:.3f}"})
    try:
        spark.read.format("lakebase").options(**late).option("dbtable", "public.jf_rows").load().count()
        out["late"] = None
    except Exception as e:  # a Spark Connect error wrapping the worker's
        out["late"] = str(e)
    try:
        _ = (
            spark.read.format("lakebase")
            .options(**opts)
            .option("dbtable", "public.jf_missing")
            .load()
            .columns
        )
        out["missing"] = None  # Connect plans lazily: .columns asks the server
    except (LakebaseSparkError, Exception) as e:
        out["missing"] = str(e)
    print(json.dumps(out))
    spark.stop()


def consistent(spark: SparkSession, endpoint: str, database: str, broker: BrokerService, save, seen):  # type: ignore[no-untyped-def]
    """lakebase_spark.read with no jar: Python workers in executor processes import the driver's
    snapshot, so rows appended after the read was defined are not in it, however often it runs."""
    import lakebase_spark
    from lakebase_spark.reading import Snapshot

    df = lakebase_spark.read(
        spark, "public.jf_rows", endpoint=endpoint, database=database, key="v", partitions=4, hold=300,
        jar_free=True, broker=broker,
    )  # fmt: skip
    before = [df.count(), df.select("id").distinct().count()]
    save(spark.range(10**6, 10**6 + 50).selectExpr("id", "'late' AS v"), dbtable="public.jf_rows")
    after = [df.count(), df.select("id").distinct().count()]
    Snapshot.close_all()
    return {"before": before, "after": after, "now": seen("public.jf_rows")[0]}


def sharded(
    spark: SparkSession, endpoint: str, shards: list[str], broker: BrokerService
) -> dict[str, object]:
    """A sharded write (run twice with one write id) and read, with no jar."""
    from lakebase_spark.sharding import RangeShardMap, Shard, read_sharded, write_sharded

    shard_map = RangeShardMap("jf_map", "bigint")
    cuts: list[int | None] = [0, 3000, None]
    for i, name in enumerate(shards):
        shard_map.add_shard(Shard(name, endpoint=endpoint, database=name))
        shard_map.add_range(cuts[i], cuts[i + 1], name)
    rows = spark.range(0, 5000, numPartitions=3).selectExpr("id", "concat('s', id) AS v")
    for _ in range(2):
        write_sharded(
            rows,
            shard_map,
            table="public.jf_sharded",
            key="id",
            write_id="jf-sharded",
            broker=broker,
            jar_free=True,
        )
    df = read_sharded(
        spark,
        shard_map,
        table="public.jf_sharded",
        key="id",
        partitions=4,
        shard_column="shard",
        broker=broker,
        jar_free=True,
    )
    per_shard = {r.shard: r["count"] for r in df.groupBy("shard").count().collect()}
    row = df.agg(F.count("*"), F.countDistinct("id"), F.sum("id")).collect()[0]
    return {"per_shard": per_shard, "total": [int(row[0]), int(row[1]), int(row[2])]}


def stream(spark: SparkSession, opts: dict[str, str], workdir: Path) -> dict[str, object]:
    """Files streamed into a table by writeStream.format("lakebase"); the last micro-batch runs twice."""
    source, checkpoint = workdir / "stream-in", workdir / "stream-checkpoint"
    source.mkdir(parents=True)

    def add(number: int) -> None:
        ids = range(number * 100, number * 100 + 100)
        (source / f"part-{number:04d}.json").write_text(
            "".join(json.dumps({"id": i, "v": f"f{i}"}) + "\n" for i in ids)
        )

    def run() -> None:
        files = spark.readStream.schema("id long, v string").option("maxFilesPerTrigger", 1).json(str(source))
        writer = files.writeStream.format("lakebase").options(**opts).option("dbtable", "public.jf_stream")
        query = writer.option("checkpointLocation", str(checkpoint)).trigger(availableNow=True).start()
        query.awaitTermination(300)

    for n in range(3):
        add(n)
    run()
    commits = checkpoint / "commits"
    last = max(int(p.name) for p in commits.iterdir() if p.name.isdigit())
    (commits / str(last)).unlink()  # as a crash between the sink's commit and Spark's own leaves it
    (commits / f".{last}.crc").unlink(missing_ok=True)
    for n in range(3, 5):
        add(n)
    run()
    batches = sorted(int(p.name) for p in commits.iterdir() if p.name.isdigit())
    df = spark.read.format("lakebase").options(**opts).option("dbtable", "public.jf_stream").load()
    row = df.agg(F.count("*"), F.countDistinct("id"), F.sum("id")).collect()[0]
    return {"replayed": last, "batches": batches, "seen": [int(row[0]), int(row[1]), int(row[2])]}


if __name__ == "__main__":
    main()
