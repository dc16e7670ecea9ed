"""Dumps the classes a Spark driver of the test suite loads into a class data sharing archive, run once by
``scripts/test`` before the suite: every later driver JVM with the same class path (the suite's session,
the jobs, the benchmark's children: ``local_spark_builder``) maps them instead of loading and verifying
them again (measured: a trivial job's driver 9.1 -> 4.8 CPU seconds). Test-only; nothing the package
sets for users. Drivers with another class path, and executors, simply do without.

Usage: ``class_data_job.py ARCHIVE``
"""

from __future__ import annotations

import sys
import tempfile

from pyspark.sql import functions as F
from pyspark.sql.types import LongType

from lakebase_spark.spark.classpath import check_jvm_classes
from lakebase_spark.testing.pytest_plugin import local_spark_builder


def main() -> None:
    (archive,) = sys.argv[1:]
    conf = {"spark.driver.extraJavaOptions": f"-XX:ArchiveClassesAtExit={archive}"}
    spark = local_spark_builder("class data sharing", conf).getOrCreate()
    try:
        check_jvm_classes(spark.sparkContext._jvm, started_by="the class data job")  # the jars' classes
        plus_one = F.udf(lambda v: v + 1, LongType())
        rows = spark.range(0, 20_000, numPartitions=4).selectExpr(
            "id", "id % 7 AS k", "cast(id / 3 AS decimal(12, 2)) AS d", "cast(id AS string) AS s",
            "timestamp'2024-01-01 00:00:00' + make_interval(0, 0, 0, 0, 0, 0, id) AS t",
        )  # fmt: skip
        totals = rows.groupBy("k").agg(F.sum("d"), F.max("t"), F.count("s"))
        rows.join(totals, "k").select(plus_one("id")).agg(F.sum("<lambda>(id)")).collect()
        rows.mapInArrow(lambda batches: batches, rows.schema).count()
        with tempfile.TemporaryDirectory() as checkpoint:  # a stream's micro-batch machinery
            query = (
                spark.readStream.format("rate").load().writeStream.format("noop")
                .option("checkpointLocation", checkpoint).trigger(availableNow=True).start()
            )  # fmt: skip
            query.awaitTermination(60)
    finally:
        driver = spark.sparkContext._gateway.proc
        spark.stop()
        # The archive is written as the JVM exits, which it does when its stdin closes; wait for it (this
        # process ending first would leave it half written).
        driver.stdin.close()
        driver.wait(timeout=300)


if __name__ == "__main__":
    main()
