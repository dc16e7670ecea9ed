"""The README's recovery steps for a failed staged write, followed as a user would, on executors in their
own JVMs with Spark retrying each task (run by writing/test_recovery.py). Usage::

    recovery_job.py MASTER HOST ENDPOINT DATABASE SCENARIO...

Each scenario: a table of 300 old rows; a staged write of 4,000 rows whose last partition fails on every
attempt (Spark gives up after 4), so the job fails with the other partitions staged; then the user's
step from the README (drop the staging table the error names, or only its commit log, or truncate the
stage); then a rerun with the same write id, the failure fixed. Prints one JSON line: per scenario the
first error, and what the table holds after the rerun (rows, distinct keys, rows with the new value).
"""

from __future__ import annotations

import json
import os
import re
import sys

import psycopg
from databricks.sdk import WorkspaceClient
from pyspark.sql import functions as F

import lakebase_spark
from lakebase_spark import WriteError, write
from lakebase_spark.testing.pytest_plugin import local_spark_builder

OLD, NEW, PARTITIONS = 300, 4000, 4

#: scenario -> (write mode and arguments, what the user does between the failure and the rerun)
SCENARIOS = {
    "overwrite-drop-stage": ({"mode": "overwrite"}, "drop-stage"),
    "overwrite-drop-stage-log": ({"mode": "overwrite"}, "drop-log"),
    "overwrite-truncate-stage": ({"mode": "overwrite"}, "truncate-stage"),
    "upsert-drop-stage": ({"mode": "upsert", "key": "id"}, "drop-stage"),
    "atomic-append-drop-stage": ({"mode": "append", "atomic": True}, "drop-stage"),
    "overwrite-resume": ({"mode": "overwrite"}, "nothing"),
}


def main() -> None:
    master, host, endpoint, database, *scenarios = sys.argv[1:]
    workspace = WorkspaceClient(host=host, token=os.environ["LAKEBASE_TEST_PAT"])
    conf = {"spark.task.maxFailures": "4", "spark.executor.memory": "768m"}
    spark = local_spark_builder("lakebase-spark recovery", conf, master=master).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    admin = os.environ["LAKEBASE_TEST_ADMIN"]
    service = lakebase_spark.shared_broker_service(workspace)
    out: dict[str, object] = {}
    try:
        for scenario in scenarios:
            arguments, step = SCENARIOS[scenario]
            table = f"public.recover_{scenario.replace('-', '_')}"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'SET ROLE "{service.broker.principal}"')
                conn.execute(f"DROP TABLE IF EXISTS {table}")
                conn.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, v text)")
                conn.execute(f"INSERT INTO {table} SELECT g, 'old' FROM generate_series(0, {OLD - 1}) g")

            # Appends get new keys; overwrite and upsert replace the old rows' keys.
            offset = OLD if arguments["mode"] == "append" else 0

            def rows(failing: bool, offset: int = offset):
                df = spark.range(offset, offset + NEW, numPartitions=PARTITIONS).selectExpr(
                    "id", "'new' AS v"
                )
                if failing:  # the last partition fails on every attempt, after the others were staged
                    broken = F.when(F.col("id") >= offset + NEW - 10, F.raise_error(F.lit("upstream broke")))
                    df = df.withColumn("v", broken.otherwise(F.col("v")))
                return df

            def run(failing: bool, table: str = table, arguments: dict = arguments, scenario: str = scenario):
                return write(
                    rows(failing),
                    table,
                    endpoint=endpoint,
                    database=database,
                    workspace_client=workspace,
                    write_id=f"recover-{scenario}",
                    **arguments,
                )

            try:
                run(failing=True)
                first_error = None
            except WriteError as e:
                first_error = str(e)
            stage = re.search(r"Staging table (\S+) holds", first_error or "")
            with psycopg.connect(admin, autocommit=True) as conn:
                if stage and step == "drop-stage":  # README: "dropping it by hand is safe"
                    conn.execute(f"DROP TABLE {stage.group(1)}")
                elif stage and step == "drop-log":  # only the stage's commit log
                    conn.execute(f'DROP TABLE {stage.group(1)[:-1]}_commits"')
                elif stage and step == "truncate-stage":
                    conn.execute(f"TRUNCATE {stage.group(1)}")
            try:
                result = run(failing=False)
                rerun = {"rows": result.rows, "skipped": result.skipped}
            except WriteError as e:  # a stage changed by hand is refused and dropped: run once more
                rerun = {"error": str(e), "again": run(failing=False).rows}
            with psycopg.connect(admin) as conn:
                count, distinct, new = conn.execute(
                    f"SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE v = 'new') FROM {table}"
                ).fetchone()
                leftovers = 0
                if stage:
                    name = stage.group(1)
                    leftovers = conn.execute(
                        "SELECT (to_regclass(%s) IS NOT NULL)::int + (to_regclass(%s) IS NOT NULL)::int",
                        (name, name[:-1] + '_commits"'),
                    ).fetchone()[0]
            out[scenario] = {
                "first_error": first_error,
                "stage": stage.group(1) if stage else None,
                "rerun": rerun,
                "rows": count,
                "distinct": distinct,
                "new": new,
                "expected": NEW + offset if arguments["mode"] == "append" else NEW,
                "stage_tables_left": leftovers,
            }
        print(json.dumps(out))
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
