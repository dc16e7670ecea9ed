"""Spark's own partitioned JDBC read, as the tests (and their jobs) issue it through the provider."""

from __future__ import annotations

from typing import Any


def partitioned_read(
    spark: Any, options: dict[str, str], table: str, *, upper: int, partitions: int, lower: int = 1
) -> Any:
    """``table`` (a name or a ``(subquery) AS x``) in ``partitions`` strides of ``id`` over [lower, upper)."""
    return (
        spark.read.format("jdbc")
        .options(**options)
        .option("dbtable", table)
        .option("partitionColumn", "id")
        .option("lowerBound", str(lower))
        .option("upperBound", str(upper))
        .option("numPartitions", str(partitions))
        .load()
    )
