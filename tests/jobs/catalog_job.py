"""Catalog writes under injected task failures and lost executors, run by sql/test_catalog_jobs.py in a
Spark of its own (``local-cluster``: executors in JVMs of their own, ``spark.task.maxFailures`` 4).
The session is built the way a job sets confs at start: ``lakebase_spark.configure(builder,
catalogs={...})``, and one catalog is added later with ``lakebase_spark.catalog(spark, ...)``; one
catalog per fault point (a catalog's options carry the writer's test-only fault).
Usage::

    catalog_job.py MASTER HOST ENDPOINT DATABASE EVENT_DIR

Prints what it showed a user (SET, plans) and, last, one JSON line: what each table holds.
"""

from __future__ import annotations

import json
import os
import sys

import psycopg
from databricks.sdk import WorkspaceClient

import lakebase_spark
from lakebase_spark.testing.pytest_plugin import local_spark_builder

ROWS = 20_000
#: Upstream failures: a UDF raises at this id (partition 2 of 4), on the first attempt or on every one.
FAIL_AT = 12_500
UPSTREAM = ("udf_first", "udf_every", "udf_every_atomic", "udf_every_overwrite")
#: catalog -> (fault point, partitions it hits)
FAULTS = {
    "lb": ("", ""),
    "lb_retry": ("fail-after-commit", ""),
    "lb_halt": ("halt-after-commit", "1"),
}


def main() -> None:
    master, host, endpoint, database, event_dir = sys.argv[1:]
    workspace = WorkspaceClient(host=host, token=os.environ["LAKEBASE_TEST_PAT"])
    conf = {
        "spark.task.maxFailures": "4",
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": f"file://{event_dir}",
        "spark.eventLog.compress": "false",
        "spark.executor.memory": "768m",
    }
    catalogs = {
        name: {
            "endpoint": endpoint,
            "database": database,
            "workspace_client": workspace,
            **({"lakebase.write.fault": fault, "lakebase.write.fault.partitions": parts} if fault else {}),
        }
        for name, (fault, parts) in FAULTS.items()
    }
    # Two catalogs set at start, the third registered on the running session (its secret file is
    # shipped then, as a notebook would).
    late = catalogs.pop("lb_halt")
    builder = local_spark_builder("lakebase-spark catalog writes", conf, master=master)
    spark = lakebase_spark.configure(builder, catalogs=catalogs).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    lakebase_spark.catalog(spark, "lb_halt", late.pop("endpoint"), **late)
    admin = os.environ["LAKEBASE_TEST_ADMIN"]
    service = lakebase_spark.shared_broker_service(workspace)
    out: dict[str, object] = {}
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'SET ROLE "{service.broker.principal}"')
            for name in (*FAULTS, *UPSTREAM):
                conn.execute(f"DROP TABLE IF EXISTS public.cat_{name}")
                conn.execute(f"CREATE TABLE public.cat_{name} (id bigint, v text)")
                conn.execute(f"INSERT INTO public.cat_{name} VALUES (-1, 'old')")
        rows = f"SELECT id, concat('v', id) AS v FROM range(0, {ROWS}, 1, 4)"
        for name in FAULTS:
            spark.sql(f"INSERT INTO {name}.public.cat_{name} {rows}")
        with psycopg.connect(admin) as conn:
            for name in FAULTS:
                out[name] = conn.execute(
                    "SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE v = 'old') "
                    f"FROM public.cat_{name}"
                ).fetchone()
        out.update(upstream(spark, admin, rows))
        # INSERT OVERWRITE with every partition's first attempt failing after its commit (to the stage).
        spark.sql(f"INSERT OVERWRITE lb_retry.public.cat_lb {rows}")
        # What a user sees: SET, plans of reads and writes, a table's description.
        for statement in (
            "SET",
            "SET -v",
            "EXPLAIN EXTENDED SELECT * FROM lb.public.cat_lb WHERE id > 5",
            "EXPLAIN FORMATTED INSERT INTO lb.public.cat_lb SELECT 1, 'x'",
            "DESCRIBE TABLE EXTENDED lb.public.cat_lb",
        ):
            for row in spark.sql(statement).collect():
                print(*row)
        out["read"] = spark.sql(
            "SELECT count(*), count(DISTINCT id) FROM lb.public.cat_lb WHERE id >= 0"
        ).first()[:]
        out["secrets"] = [
            service.broker.credential(endpoint=endpoint).token.reveal(),
            service.secret.reveal(),
        ]
        print(json.dumps(out))
    finally:
        spark.stop()


def upstream(spark, admin: str, rows: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Statements whose rows fail before they reach the writer (a UDF), on the first attempt (Spark retries
    the task) or on every one (the statement fails): each table's (rows, distinct ids, old rows), and the
    statement's error."""

    def flaky(value: int, every: bool) -> int:
        from pyspark import TaskContext

        context = TaskContext.get()
        if value == FAIL_AT and (every or (context is not None and context.attemptNumber() == 0)):
            raise RuntimeError(f"injected upstream failure at id {value}")
        return value

    spark.udf.register("flaky_first", lambda v: flaky(v, False), "bigint")
    spark.udf.register("flaky_every", lambda v: flaky(v, True), "bigint")
    first = rows.replace("SELECT id,", "SELECT flaky_first(id) AS id,")
    every = rows.replace("SELECT id,", "SELECT flaky_every(id) AS id,")
    statements = {
        "udf_first": lambda: spark.sql(f"INSERT INTO lb.public.cat_udf_first {first}"),
        "udf_every": lambda: spark.sql(f"INSERT INTO lb.public.cat_udf_every {every}"),
        "udf_every_atomic": lambda: (
            spark.sql(every).writeTo("lb.public.cat_udf_every_atomic").option("atomic", "true").append()
        ),
        "udf_every_overwrite": lambda: spark.sql(
            f"INSERT OVERWRITE lb.public.cat_udf_every_overwrite {every}"
        ),
    }
    out: dict[str, object] = {}
    for name, statement in statements.items():
        try:
            statement()
            error = None
        except Exception as e:  # the statement failing is the point of the *_every scenarios
            error = "injected upstream failure" if "injected upstream failure" in str(e) else str(e)[:300]
        with psycopg.connect(admin) as conn:
            held = conn.execute(
                "SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE v = 'old') "
                f"FROM public.cat_{name}"
            ).fetchone()
        out[name] = {"held": held, "error": error}
    return out


if __name__ == "__main__":
    main()
