"""A read and a write with executors in their own JVMs (``local-cluster``), run by test_cluster.py.

Run as a separate process because one Python process holds one SparkContext, and the shared test
session is ``local[*]`` (executors inside the driver's JVM). Prints one JSON line of results.
"""

from __future__ import annotations

import json
import os
import sys

from databricks.sdk import WorkspaceClient
from pyspark.sql import SparkSession

import lakebase_spark


def main() -> None:
    host, endpoint, database = sys.argv[1:4]
    workspace = WorkspaceClient(host=host, token=os.environ["LAKEBASE_TEST_PAT"])
    builder = (
        SparkSession.builder.master("local-cluster[2,1,1024]")
        .appName("lakebase-spark cluster test")
        .config("spark.ui.enabled", "false")
        .config("spark.executor.memory", "768m")
    )
    spark = lakebase_spark.configure(builder).getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    try:
        opts = lakebase_spark.lakebase_options(endpoint, database=database, workspace_client=workspace)
        service = lakebase_spark.shared_broker_service(workspace)
        df = (
            spark.read.format("jdbc")
            .options(**opts)
            .option("dbtable", "public.cluster_src")
            .option("partitionColumn", "id")
            .option("lowerBound", "0")
            .option("upperBound", "10000")
            .option("numPartitions", "4")
            .load()
        )
        total = df.groupBy().sum("id").collect()[0][0]
        df.write.format("jdbc").options(**opts).option("dbtable", "public.cluster_dst").mode(
            "overwrite"
        ).save()
        executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1  # minus the driver
        print(
            json.dumps(
                {
                    "executors": executors,
                    "partitions": df.rdd.getNumPartitions(),
                    "sum": total,
                    "tokens_served": service.tokens_served,
                    "mints": service.broker.stats.mints,
                }
            )
        )
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
