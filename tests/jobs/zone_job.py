"""Dates and timestamps written by Spark's JDBC writer and by ``lakebase_spark.write`` from a JVM (and a
Python) in a time zone with a half-hour offset, daylight saving time and a local mean time before 1935
(America/St_Johns), compared value for value (run by writing/test_types.py). Usage::

    zone_job.py HOST ENDPOINT DATABASE

Prints one JSON line: the differences found, and how many cases each writer wrote.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date, datetime
from pathlib import Path

import psycopg
from databricks.sdk import WorkspaceClient

import lakebase_spark
from lakebase_spark import write
from lakebase_spark.testing.pytest_plugin import local_spark_builder

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests.differential
from tests.differential import Case, differs, run

ZONE = "America/St_Johns"
DATES = (date(2024, 1, 1), date(2024, 3, 10), date(2024, 11, 3), date(1900, 1, 1), date(1, 1, 1))
TIMES = (
    datetime(2024, 1, 1, 12, 34, 56, 123456),
    datetime(2024, 3, 10, 2, 30),  # a wall clock inside the spring-forward gap
    datetime(2024, 11, 3, 1, 30),  # ambiguous: the fall-back hour
    datetime(1900, 1, 1, 0, 0, 0, 500000),  # local mean time: an offset with seconds
    datetime(1969, 12, 31, 23, 59, 59, 999999),
    datetime(1850, 6, 1, 12, 0, 0, 120000),  # before 1900: Spark's own java.sql conversion
    datetime(1, 1, 1, 0, 0, 1),  # the Julian calendar, and java.util's offset before the zone's first rule
)
COLUMNS = ("text", "timestamptz", "timestamp", "date", "time", "timetz")


def main() -> None:
    host, endpoint, database = sys.argv[1:4]
    workspace = WorkspaceClient(host=host, token=os.environ["LAKEBASE_TEST_PAT"])
    conf = {"spark.sql.session.timeZone": ZONE, "spark.driver.extraJavaOptions": f"-Duser.timezone={ZONE}"}
    spark = local_spark_builder("lakebase-spark time zones", conf).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    service = lakebase_spark.shared_broker_service(workspace)
    opts = lakebase_spark.lakebase_options(endpoint, database=database, workspace_client=workspace)
    zone = spark.sparkContext._jvm.java.util.TimeZone.getDefault().getID()
    cases = [
        Case(spark_type, values, column)
        for spark_type, values in (("date", DATES), ("timestamp", TIMES), ("timestamp_ntz", TIMES))
        for column in COLUMNS
    ]
    try:
        with psycopg.connect(os.environ["LAKEBASE_TEST_ADMIN"], autocommit=True) as admin:
            admin.execute(f'SET ROLE "{service.broker.principal}"')

            def theirs(df, table) -> None:
                df.write.format("jdbc").options(**opts).option("dbtable", table).mode("append").save()

            def ours(df, table) -> None:
                write(df, table, endpoint=endpoint, database=database, workspace_client=workspace)

            spark_side = run(cases, admin, spark, theirs, "zone_spark")
            our_side = run(cases, admin, spark, ours, "zone_ours", alone=list(spark_side.failed))
            problems = []
            for i, case in enumerate(cases):
                a, b = spark_side.written.get(i), our_side.written.get(i)
                if a and b:
                    diff = differs(admin, a, b, len(case.values))
                    if diff:
                        problems.append(f"{case.label()}: {diff[:4]}")
                elif a or b:
                    wrote = {True: "wrote", False: "failed"}
                    problems.append(f"{case.label()}: spark {wrote[bool(a)]}, ours {wrote[bool(b)]}")
        print(
            json.dumps(
                {
                    "zone": zone,
                    "cases": len(cases),
                    "spark_writes": len(spark_side.written),
                    "ours_writes": len(our_side.written),
                    "problems": problems,
                }
            )
        )
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
