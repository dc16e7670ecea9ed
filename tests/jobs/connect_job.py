"""The product through a Spark Connect session, run by test_connect.py in a process of its own.

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


if __name__ == "__main__":
    main()
