"""A jar-free read's Spark partitions: one exact SQL predicate each (planned by :mod:`..reading.ranges`:
page ranges by default, key ranges with ``partitionColumn``, or the caller's ``predicates``)."""

from __future__ import annotations

from pyspark.sql.datasource import InputPartition

__all__ = ["SqlPartition", "partitions_of"]


class SqlPartition(InputPartition):
    """One Spark partition of a read: a predicate over the relation."""

    def __init__(self, index: int, predicate: str) -> None:
        self.index = index
        self.predicate = predicate


def partitions_of(predicates: list[str]) -> list[SqlPartition]:
    return [SqlPartition(i, f"({p})") for i, p in enumerate(predicates)]
