"""An example job: revenue per customer, read from and written to Lakebase (see test_customer_totals.py)."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakebase_spark import WriteResult, lakebase_options, write


def customer_totals(spark: SparkSession, endpoint: str) -> WriteResult:
    """Sum ``public.orders`` by customer into ``public.customer_totals`` (replaced atomically)."""
    opts = lakebase_options(endpoint)
    orders: DataFrame = spark.read.format("jdbc").options(**opts).option("dbtable", "public.orders").load()
    totals = orders.groupBy("customer").agg(F.count("*").alias("orders"), F.sum("amount").alias("revenue"))
    return write(totals, "public.customer_totals", mode="overwrite", endpoint=endpoint)
