"""The package's own calls on the jar-free path: a DataFrame written (or a shard read) through
``format("lakebase")`` with the arguments ``lakebase_spark.write`` takes, for ``foreach_batch`` and the
sharded reader and writer."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..errors import WriteInputError
from ..names import TableLike, TableName
from .options import FORMAT, PREDICATES

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["load_predicates", "save"]


def save(
    df: DataFrame,
    table: TableLike,
    options: Mapping[str, str],
    *,
    mode: str = "append",
    key: str | Sequence[str] | None = None,
    order_by: str | Sequence[str] | None = None,
    write_id: str | None = None,
    atomic: bool = False,
) -> None:
    """``df`` into ``table`` through ``format("lakebase")``; ``mode`` as in ``lakebase_spark.write``
    (``append``, ``overwrite`` or ``upsert`` with ``key``), ``options`` from ``source_options``."""
    from . import register

    if mode not in ("append", "overwrite", "upsert"):
        raise WriteInputError(f"the jar-free path writes with mode append, overwrite or upsert, not {mode!r}")
    if mode == "upsert" and not key:
        raise WriteInputError("an upsert needs key=: the columns that identify a row")
    register(df.sparkSession)
    writer = df.write.format(FORMAT).options(**options).option("dbtable", TableName.parse(table).quoted())
    writer = writer.option("atomic", str(atomic).lower())
    if write_id:
        writer = writer.option("writeId", write_id)
    if mode == "upsert":
        writer = writer.option("upsertKey", _joined(key))
        if order_by:
            writer = writer.option("orderBy", _joined(order_by))
    writer.mode("overwrite" if mode == "overwrite" else "append").save()


def load_predicates(
    spark: SparkSession, table: TableLike, options: Mapping[str, str], predicates: Sequence[str]
) -> DataFrame:
    """``table`` through ``format("lakebase")``, one partition per SQL predicate."""
    from . import register

    register(spark)
    reader = spark.read.format(FORMAT).options(**options).option("dbtable", TableName.parse(table).quoted())
    return reader.option(PREDICATES, json.dumps(list(predicates))).load()


def _joined(columns: str | Sequence[str] | None) -> str:
    return ",".join([columns] if isinstance(columns, str) else columns or [])
