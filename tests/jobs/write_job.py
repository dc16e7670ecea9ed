"""Writes under injected task failures, run by writing/test_retries.py in a Spark of its own.

Spark retries failed tasks only when it is allowed to: ``local[N,F]`` (F attempts per task) or a
``local-cluster`` with ``spark.task.maxFailures``. The shared test session is plain ``local[2]``, so
these scenarios run here. Usage::

    write_job.py MASTER HOST ENDPOINT DATABASE EVENT_DIR SCENARIO...

Each scenario writes a table with a fault from the writer's fault-injection points and reports what
the table holds; one JSON line per run on stdout.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import psycopg
from databricks.sdk import WorkspaceClient

import lakebase_spark
from lakebase_spark import write
from lakebase_spark.testing.pytest_plugin import local_spark_builder

ROWS = 20_000
PARTITIONS = 4
RESTART_ROWS = 3_000_000  # long enough (seconds) for the test to restart Postgres in the middle

#: scenario -> (fault point, partitions it hits, write mode); "restart" has no fault of the writer's:
#: the test restarts Postgres while it writes (see LAKEBASE_TEST_SIGNAL).
SCENARIOS = {
    "restart": ("", "", "append"),
    "fail-after-commit": ("fail-after-commit", "", "append"),
    "fail-before-commit": ("fail-before-commit", "1,3", "append"),
    "halt-after-commit": ("halt-after-commit", "1", "append"),
    "halt-mid-copy": ("halt-mid-copy", "2", "append"),
    "upsert-fail-after-commit": ("fail-after-commit", "", "upsert"),
}


def main() -> None:
    master, host, endpoint, database, event_dir, *scenarios = sys.argv[1:]
    workspace = WorkspaceClient(host=host, token=os.environ["LAKEBASE_TEST_PAT"])
    conf = {
        "spark.task.maxFailures": "4",
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": f"file://{event_dir}",
        "spark.eventLog.compress": "false",
        "spark.executor.memory": "768m",
    }
    spark = local_spark_builder("lakebase-spark write retries", conf, master=master).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    service = lakebase_spark.shared_broker_service(workspace)
    admin = os.environ["LAKEBASE_TEST_ADMIN"]
    out: dict[str, object] = {}
    try:
        for scenario in scenarios:
            fault, fault_partitions, mode = SCENARIOS[scenario]
            table = f"public.retry_{scenario.replace('-', '_')}"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'SET ROLE "{service.broker.principal}"')
                conn.execute(f"DROP TABLE IF EXISTS {table}")
                if scenario == "restart":  # the restart should hit the COPYs, not the table's creation
                    conn.execute(f"CREATE TABLE {table} (id bigint, v text)")
                if mode == "upsert":
                    conn.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, v text)")
                    conn.execute(
                        f"INSERT INTO {table} SELECT g, 'old' FROM generate_series(0, {ROWS // 2 - 1}) g"
                    )
            rows, partitions = (RESTART_ROWS, 8) if scenario == "restart" else (ROWS, PARTITIONS)
            df = spark.range(0, rows, numPartitions=partitions).selectExpr("id", "concat('v', id) AS v")
            started = time.time()
            if scenario == "restart":
                Path(os.environ["LAKEBASE_TEST_SIGNAL"]).write_text(str(started))  # the test restarts now
            result = write(
                df,
                table,
                mode=mode,
                key="id" if mode == "upsert" else None,
                endpoint=endpoint,
                database=database,
                workspace_client=workspace,
                options={"lakebase.write.fault": fault, "lakebase.write.fault.partitions": fault_partitions},
            )
            with psycopg.connect(admin) as conn:
                count, distinct, old = conn.execute(
                    f"SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE v = 'old') FROM {table}"
                ).fetchone()
            out[scenario] = {
                "rows": count,
                "distinct": distinct,
                "old": old,
                "reported": result.rows,
                "window": [started, time.time()],
            }
        out["secrets"] = [
            service.broker.credential(endpoint=endpoint).token.reveal(),
            service.secret.reveal(),
        ]
        print(json.dumps(out))
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
