"""A read and a write with executors in their own JVMs (``local-cluster``), run by spark/test_cluster.py.

Run as a separate process because one Python process holds one SparkContext, and the shared test
session is ``local[*]`` (executors inside the driver's JVM). Prints one JSON line of results.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

from databricks.sdk import WorkspaceClient
from pyspark.sql import SparkSession

import lakebase_spark
from lakebase_spark.testing.pytest_plugin import local_spark_builder

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests.jdbc_reads
from tests.jdbc_reads import partitioned_read


def main() -> None:
    host, endpoint, database, event_dir = sys.argv[1:5]
    workspace = WorkspaceClient(host=host, token=os.environ["LAKEBASE_TEST_PAT"])
    conf = {
        "spark.ui.enabled": "true",
        "spark.ui.port": "0",  # any free port: the UI's pages are searched for secrets below
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": f"file://{event_dir}",
        "spark.eventLog.compress": "false",  # searched as text by the test
        "spark.executor.memory": "768m",
    }
    spark = local_spark_builder(
        "lakebase-spark cluster test", conf, master="local-cluster[2,1,1024]"
    ).getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    try:
        opts = lakebase_spark.lakebase_options(endpoint, database=database, workspace_client=workspace)
        service = lakebase_spark.shared_broker_service(workspace)
        df = partitioned_read(spark, opts, "public.cluster_src", upper=10000, partitions=4, lower=0)
        total = df.groupBy().sum("id").collect()[0][0]
        df.write.format("jdbc").options(**opts).option("dbtable", "public.cluster_dst").mode(
            "overwrite"
        ).save()
        executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1  # minus the driver
        secrets = [
            service.broker.credential(endpoint=endpoint).token.reveal(),
            opts["lakebase.broker.secret"],
        ]
        pages = ui_pages(spark)
        print(
            json.dumps(
                {
                    "executors": executors,
                    "partitions": df.rdd.getNumPartitions(),
                    "sum": total,
                    "tokens_served": service.tokens_served,
                    "mints": service.broker.stats.mints,
                    "ui_pages": {path: len(text) for path, text in pages.items()},
                    "ui_sql_shows_jdbc": "jdbc" in pages["sql"].lower(),
                    "ui_leaks": [path for path, text in pages.items() if any(s in text for s in secrets)],
                    "secrets": secrets,  # for the test to search the event log, written at stop()
                }
            )
        )
    finally:
        spark.stop()


def ui_pages(spark: SparkSession) -> dict[str, str]:
    """The Spark UI's environment and SQL pages, as its REST API and HTML serve them."""
    sc = spark.sparkContext
    api = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}"
    paths = {
        "environment": f"{api}/environment",
        "sql": f"{api}/sql?details=true&planDescription=true",
        "jobs": f"{api}/jobs",
        "environment.html": f"{sc.uiWebUrl}/environment/",
        "sql.html": f"{sc.uiWebUrl}/SQL/",
    }
    out = {}
    for name, url in paths.items():
        with urllib.request.urlopen(url, timeout=30) as response:
            out[name] = response.read().decode("utf-8", "replace")
    return out


if __name__ == "__main__":
    main()
