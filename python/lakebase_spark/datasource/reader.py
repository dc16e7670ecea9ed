"""The jar-free reader: partitions planned on the driver, each read on an executor as Arrow batches
straight from Postgres' binary ``COPY`` (ADBC's Postgres driver, in C), never a partition collected.

Columns: those of the schema Spark asks for (``.schema("id bigint, note string")`` reads two).
Filters: pushed into Postgres with option ``pushFilters=true`` (:class:`FilteringReader`), as exact
SQL where Postgres answers as Spark would (``filters.py``). Opt-in because Spark 4.3 plans a Python
data source's read once per DataFrame: a DataFrame queried with different filters reuses the first
query's pushed filters (``df.count()`` after ``df.where(...).count()`` counts the filtered rows).

Measured against psycopg's binary COPY (which would leave the Arrow conversion to Python) and the
JDBC path in ``bench/``: see the README's "The jar-free path".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from pyspark.sql.datasource import DataSourceReader, InputPartition

from ..errors import LakebaseSparkError
from ..postgres.snapshots import SNAPSHOT, import_snapshot
from .columns import ReadColumn, query_columns, table_columns
from .options import PREDICATES, SourceOptions, SourceOptionsError
from .partitions import SqlPartition, partitions_of

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql.datasource import Filter

__all__ = ["FilteringReader", "LakebaseReader", "describe_columns"]

log = logging.getLogger(__name__)

#: Partitions of a read when numPartitions is not given.
DEFAULT_PARTITIONS = 8
#: ADBC's target size of one Arrow batch (its default is 16 MiB). Bench case 9 (3M rows, one partition
#: of 375k vs 3M rows): peak Python worker memory 239 vs 241 MiB with 1 MiB batches, 265 vs 293 MiB
#: with 16 MiB; reads as fast (1.38M vs 1.33M rows/s over 4 partitions, within the runs' spread).
BATCH_BYTES = 1 << 20


def describe_columns(options: SourceOptions) -> list[ReadColumn]:
    """The columns of the relation the options name (driver side; one catalog query)."""
    with options.require_login().psycopg(autocommit=True) as conn:
        if options.table is not None:
            return table_columns(conn, options.table)
        if options.query is not None:
            return query_columns(conn, options.query)
    raise SourceOptionsError("a read needs option dbtable ('schema.table') or option query")


class LakebaseReader(DataSourceReader):
    """Plans partitions (driver), reads one partition as Arrow batches (executor); picklable."""

    def __init__(self, options: SourceOptions, columns: list[ReadColumn], wanted: Sequence[str]) -> None:
        self.options = options
        by_name = {c.name: c for c in columns}
        missing = [name for name in wanted if name not in by_name]
        if missing:
            raise SourceOptionsError(f"the schema names column(s) {missing} that the relation does not have")
        self.columns = [by_name[name] for name in wanted]
        self.by_name = by_name
        #: Conditions pushed by Spark (FilteringReader), ANDed to every partition's predicate.
        self.pushed: list[str] = []

    def partitions(self) -> Sequence[InputPartition]:
        options = self.options
        wanted = options.integer("numPartitions", DEFAULT_PARTITIONS)
        if wanted < 1:
            raise SourceOptionsError(f"option numPartitions must be at least 1, got {wanted}")
        key = options.get("partitionColumn")
        predicates = options.get(PREDICATES)
        if predicates:  # exact SQL, one partition each (the sharded reader's plan; Spark's JDBC predicates)
            if key:
                raise SourceOptionsError(f"give option {PREDICATES} or option partitionColumn, not both")
            try:
                listed = json.loads(predicates)
            except ValueError:
                listed = None
            if not isinstance(listed, list) or not listed or not all(isinstance(p, str) for p in listed):
                raise SourceOptionsError(f"option {PREDICATES} must be a JSON list of SQL predicates")
            return partitions_of(listed)
        from ..reading.ranges import key_predicates, page_predicates

        assert options.login is not None
        with options.login.psycopg(autocommit=True) as conn:
            if options.table is None:
                if key:
                    raise SourceOptionsError(
                        "partitionColumn goes with option dbtable (a query is read whole)"
                    )
                return [SqlPartition(0, "TRUE")]
            if key:
                return partitions_of(key_predicates(conn, options.table, key, wanted))
            return partitions_of(page_predicates(conn, options.table, wanted))

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        from adbc_driver_postgresql import StatementOptions

        options = self.options
        assert options.login is not None
        assert isinstance(partition, SqlPartition)
        relation = options.table.quoted() if options.table else f"({options.query}) AS q"
        select = ", ".join(c.expression for c in self.columns) or "NULL"
        where = " AND ".join([partition.predicate, *(f"({c})" for c in self.pushed)])
        statement = f"SELECT {select} FROM {relation} WHERE {where}"  # noqa: S608 - quoted names, exact SQL
        names = [c.name for c in self.columns]
        snapshot = options.get(SNAPSHOT)
        connection = options.login.adbc()
        try:
            with connection.cursor() as cursor:
                if snapshot:
                    import_snapshot(cursor, snapshot, options.login.where)
                cursor.adbc_statement.set_options(
                    **{StatementOptions.BATCH_SIZE_HINT_BYTES.value: str(BATCH_BYTES)}
                )
                cursor.execute(statement)
                for batch in cursor.fetch_record_batch():
                    arrays = [column.convert(batch.column(i)) for i, column in enumerate(self.columns)]
                    yield pa.RecordBatch.from_arrays(arrays, names=names)
        except LakebaseSparkError:
            raise
        except Exception as e:  # the driver's message names the column or value; never the password
            hint = ""
            if getattr(e, "sqlstate", None) == "42501" and options.table is not None:
                # Spark 4's Python data sources get no column pruning (its scan of them pushes filters
                # only): every column of the schema is read, whatever the query selects.
                schema = ", ".join(f"{c.name} {c.spark_type}" for c in self.columns)
                hint = (
                    ". Every column of the read's schema is selected (Spark does not prune a Python data "
                    "source's columns): keep only the columns the role may read in .schema(...) before "
                    f".load() (this read's schema: {schema!r}), or read with option query"
                )
            raise LakebaseSparkError(
                f"lakebase: reading {relation} (partition {partition.index}) failed: {e}{hint}"
            ) from None
        finally:
            connection.close()


class FilteringReader(LakebaseReader):
    """A reader that takes Spark's filters where Postgres answers exactly as Spark would (filters.py).

    Opt-in (option ``pushFilters=true``): Spark 4.3 plans a Python data source's read once per
    DataFrame, so a DataFrame loaded once and queried with different filters reuses the first query's
    pushed filters (``df.where("x > 5").count()`` then ``df.count()`` counts the filtered rows). With
    it on, load a new DataFrame for each differently filtered query.
    """

    def pushFilters(self, filters: list[Filter]) -> Iterator[Filter]:
        from .filters import filter_sql

        self.pushed = []
        for spark_filter in filters:
            condition = filter_sql(spark_filter, self.by_name)
            if condition is None:
                yield spark_filter  # Spark evaluates it
            else:
                self.pushed.append(condition)
        if self.pushed:
            log.info("lakebase: pushed %d filter(s) into Postgres", len(self.pushed))
