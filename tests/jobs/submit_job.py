"""The README's Quickstart job as a user runs it: ``spark-submit`` (with or without the flags
``lakebase-spark submit-args`` prints) or plain ``python``. Auth from DATABRICKS_HOST/TOKEN.

    submit_job.py ENDPOINT DATABASE [--no-configure]

Prints one JSON line: the rows read back, or the error raised.
"""

from __future__ import annotations

import json
import sys

from pyspark.sql import SparkSession

import lakebase_spark
from lakebase_spark import lakebase_options, write


def main() -> None:
    endpoint, database, *flags = sys.argv[1:]
    builder = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
    try:
        if "--no-configure" not in flags:
            builder = lakebase_spark.configure(builder)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        write(spark.range(100), "public.submitted", mode="overwrite", endpoint=endpoint, database=database)
        opts = lakebase_options(endpoint, database=database)
        rows = spark.read.format("jdbc").options(**opts).option("dbtable", "public.submitted").load().count()
    except Exception as e:  # reported to the test, which checks the message
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        return
    print(json.dumps({"rows": rows}))
    spark.stop()


if __name__ == "__main__":
    main()
