"""The product through a Spark Connect session, run by spark/test_spark_connect.py in a process of its own.

Usage: ``connect_job.py REMOTE HOST ENDPOINT DATABASE SHARD...``. REMOTE is ``local[2]`` (pyspark starts
a local Connect server, given the jars by ``configure()``) or ``sc://host:port`` (a server started with
``--jars``). Writes with the COPY writer, reads back through the provider, writes and reads a sharded
table, and prints one JSON line of what it saw.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid

from databricks.sdk import WorkspaceClient
from pyspark.sql import SparkSession

import lakebase_spark
from lakebase_spark import LakebaseSparkError, lakebase_options, sessions, write
from lakebase_spark.sessions import is_connect
from lakebase_spark.sharding import RangeShardMap, Shard, read_sharded, write_sharded

ROWS = 10_000


def main() -> None:
    remote, host, endpoint, database, *shards = sys.argv[1:]
    workspace = WorkspaceClient(host=host, token=os.environ["LAKEBASE_TEST_PAT"])
    builder = SparkSession.builder.remote(remote).appName("lakebase-spark connect test")
    if remote.startswith("local"):
        builder = lakebase_spark.configure(builder.config("spark.ui.enabled", "false"))
    foreign = os.environ.get("LAKEBASE_TEST_FOREIGN_DRIVER")
    spark = builder.getOrCreate()
    out: dict[str, object] = {"connect": is_connect(spark)}
    if foreign:
        # One machine cannot host a driver on another machine (Spark must reach its own driver address),
        # so only the network fact is replaced: the driver's address is not one of this machine's, as for
        # a Databricks Connect client on a laptop. The session, its configuration and the check are real.
        sessions._is_local_address = lambda host: False
        try:
            lakebase_options(endpoint, database=database, workspace_client=workspace)
            out["refused"] = None
        except lakebase_spark.BrokerError as e:
            out["refused"] = str(e)
        print(json.dumps(out))
        spark.stop()
        return
    try:
        opts = lakebase_options(endpoint, database=database, workspace_client=workspace)
        service = lakebase_spark.shared_broker_service(workspace)
        out["broker_url"] = service.url
        out["broker_secret"] = service.secret.reveal()  # to look for in the server's logs and event log
        df = spark.range(0, ROWS, numPartitions=4).selectExpr("id", "concat('v', id) AS v")
        written = write(
            df,
            "public.connect_rows",
            mode="overwrite",
            endpoint=endpoint,
            database=database,
            workspace_client=workspace,
        )
        back = spark.read.format("jdbc").options(**opts).option("dbtable", "public.connect_rows").load()
        total = back.groupBy().sum("id").collect()[0][0]
        out["write"] = {"reported": written.rows, "count": back.count(), "sum": total}
        out["failed_append"] = failed_append(df, endpoint, database, workspace)

        shard_map = RangeShardMap("connect_map", "bigint")
        for name in shards:
            shard_map.add_shard(Shard(name, endpoint=endpoint, database=name))
        cuts = [0, ROWS // 3, 2 * ROWS // 3, None]
        for i, name in enumerate(shards):
            shard_map.add_range(cuts[i], cuts[i + 1], name)
        sharded = write_sharded(
            df,
            shard_map,
            table="public.connect_sharded",
            key="id",
            mode="overwrite",
            workspace_client=workspace,
        )
        everything = read_sharded(
            spark,
            shard_map,
            table="public.connect_sharded",
            key="id",
            partitions=6,
            shard_column="shard",
            workspace_client=workspace,
        )
        per_shard = {r["shard"]: r["count"] for r in everything.groupBy("shard").count().collect()}
        out["sharded"] = {
            "written": sharded.rows,
            "read": per_shard,
            "sum": everything.groupBy().sum("id").collect()[0][0],
        }
        # The SQL catalog on a Connect session: the secret reaches the server as a session file.
        lakebase_spark.catalog(spark, "lbc", endpoint, database=database, workspace_client=workspace)
        spark.sql("DROP TABLE IF EXISTS lbc.public.connect_cat")
        spark.sql("CREATE TABLE lbc.public.connect_cat AS SELECT id, id * 2 AS d FROM range(0, 1000, 1, 2)")
        spark.sql("INSERT INTO lbc.public.connect_cat SELECT id, id * 2 FROM range(1000, 3000, 1, 3)")
        spark.sql("DELETE FROM lbc.public.connect_cat WHERE id >= 2500")
        row = spark.sql("SELECT count(*), count(DISTINCT id), sum(d) FROM lbc.public.connect_cat").first()
        listed = [r.tableName for r in spark.sql("SHOW TABLES IN lbc.public").collect()]
        out["catalog"] = [*row, "connect_cat" in listed]
        try:
            lakebase_spark.provider_stats(spark)
            out["provider_stats"] = "no error"
        except LakebaseSparkError as e:
            out["provider_stats"] = str(e)
        stats = service.stats()
        out["stats"] = {
            "mints": stats["mints"],
            "jvms": stats.get("jvms", 0),
            "logins": stats.get("logins", 0),
        }
    finally:
        spark.stop()
    deadline = time.monotonic() + 10
    while service.running and time.monotonic() < deadline:
        time.sleep(0.2)
    out["broker_stopped_with_session"] = not service.running
    print(json.dumps(out))


def failed_append(df, endpoint: str, database: str, workspace: WorkspaceClient) -> dict[str, object]:
    """A Connect session has no status tracker to wait for a failed job's tasks: the error must say its count
    is a lower bound, and give the query for the exact one."""
    from pyspark.sql import functions as F

    # The last partition fails on every attempt (a server on local-cluster retries tasks), after the others.
    broken = df.withColumn(
        "v", F.when(F.col("id") >= 7_500, F.raise_error(F.lit("upstream broke"))).otherwise("v")
    )
    try:
        write(
            broken,
            "public.connect_rows",
            endpoint=endpoint,
            database=database,
            workspace_client=workspace,
            write_id=f"connect-lower-{uuid.uuid4().hex}",  # both Connect tests write this table
        )
        return {"error": None}
    except lakebase_spark.WriteError as e:
        message = str(e)
    query = message[message.index("SELECT") : message.index(" gives the exact count")]
    time.sleep(2)  # the failed job's other tasks have ended
    with lakebase_spark.connect(endpoint=endpoint, database=database, workspace_client=workspace) as conn:
        counted = conn.execute(query).fetchone()
        rows = conn.execute("SELECT count(*) FROM public.connect_rows WHERE id >= 0").fetchone()[0]
    return {
        "lower_bound": "holds at least" in message,
        "query": [counted[0], int(counted[1] or 0)],
        "table": rows,
    }


if __name__ == "__main__":
    main()
