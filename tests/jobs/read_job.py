"""Reads through outages, run by spark/test_outages.py in a Spark of its own (``local[N,F]`` retries tasks).

Usage::

    read_job.py MASTER HOST ENDPOINT DATABASE TABLE ROWS PARTITIONS SLEEP [OPTION=VALUE ...]

Reads ``TABLE`` (``id bigint, v text``, ids ``0..ROWS-1``) in ``PARTITIONS`` partitions whose queries
each sleep ``SLEEP`` seconds in Postgres (so they overlap), compares every row with the expected ones
(chispa), and prints one JSON line: the rows, the provider's counters, or the error Spark raised and
how long the read took. Writes the file ``LAKEBASE_TEST_SIGNAL`` names when the read starts. Options
whose key starts with ``spark.`` configure the session (e.g. ``spark.task.maxFailures=4``); the rest
are read options.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from chispa import assert_df_equality
from databricks.sdk import WorkspaceClient

import lakebase_spark
from lakebase_spark.testing.pytest_plugin import local_spark_builder

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests.jdbc_reads
from tests.jdbc_reads import partitioned_read


def main() -> None:
    master, host, endpoint, database, table, rows, partitions, sleep, *extra = sys.argv[1:]
    settings = dict(pair.split("=", 1) for pair in extra)
    workspace = WorkspaceClient(host=host, token=os.environ["LAKEBASE_TEST_PAT"])
    conf = {key: value for key, value in settings.items() if key.startswith("spark.")}
    spark = local_spark_builder("lakebase-spark outages", conf, master=master).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        options = lakebase_spark.lakebase_options(endpoint, database=database, workspace_client=workspace)
        options.update({k: v for k, v in settings.items() if not k.startswith("spark.")})
        before = lakebase_spark.provider_stats(spark)
        slow = f"(SELECT id, v FROM {table}, LATERAL (SELECT pg_sleep({float(sleep)})) s) q"
        df = partitioned_read(spark, options, slow, upper=int(rows), partitions=int(partitions), lower=0)
        Path(os.environ["LAKEBASE_TEST_SIGNAL"]).write_text("reading")
        started = time.monotonic()
        try:
            got = spark.createDataFrame(df.orderBy("id").collect(), df.schema)
        except Exception as e:  # reported to the test, which asserts on it
            print(json.dumps({"error": str(e), "seconds": time.monotonic() - started}))
            return
        expected = spark.range(0, int(rows)).selectExpr("id", "concat('v', id) AS v")
        assert_df_equality(got, expected, ignore_nullable=True, ignore_metadata=True)
        after = lakebase_spark.provider_stats(spark)
        print(
            json.dumps(
                {
                    "rows": got.count(),
                    **{name: after[name] - before[name] for name in after},
                }
            )
        )
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
