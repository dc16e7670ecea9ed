"""Which reader loads a planned read through the jar: the binary-COPY reader (``reader="copy"``) when
every column has a decoder (``copy_columns.py``), else Spark's JDBC reader, one partition per predicate
either way. ``read`` and ``read_sharded`` (per shard) load through here."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError
from ..names import TableName

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["READERS", "check_reader", "load_partitions"]

log = logging.getLogger(__name__)

#: The readers of the jar's path.
READERS = ("copy", "jdbc")


def check_reader(reader: str) -> None:
    if reader not in READERS:
        raise InvalidArgumentError(f"reader must be one of {', '.join(READERS)}, got {reader!r}")


def load_partitions(
    spark: SparkSession,
    table: TableName,
    jdbc_options: Mapping[str, str],
    predicates: Sequence[str],
    *,
    reader: str,
    connect: Callable[[], AbstractContextManager[Any]],
    options: Mapping[str, str],
) -> DataFrame:
    """``table`` in one partition per predicate. ``jdbc_options``: the provider's options (``url``
    included) plus the read's (snapshot, ``options``); ``connect``: a psycopg connection to the same
    database, for the column types; ``options``: the user's read options."""
    opts = dict(jdbc_options)
    url = opts.pop("url")
    jdbc = spark.read.jdbc(url, table.quoted(), predicates=list(predicates), properties=opts)
    if reader != "copy":
        return jdbc
    from .copy_columns import COPY_READ_SOURCE, copy_columns, copy_read_options

    with connect() as conn:
        planned = copy_columns(conn, table, jdbc.schema, options)
    if planned.columns is None:
        log.info("lakebase: reading %s with the JDBC reader: %s", table, planned.unsupported)
        return jdbc
    source = spark.read.format(COPY_READ_SOURCE).schema(jdbc.schema)
    return source.options(**{**jdbc_options, **copy_read_options(table, planned.columns, predicates)}).load()
