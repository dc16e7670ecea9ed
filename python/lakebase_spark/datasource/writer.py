"""The jar-free writer: the COPY writer's guarantees in Python tasks (ADBC's binary COPY from Arrow).

Each task writes its partition with one ``COPY ... FROM STDIN (FORMAT binary)`` and inserts its marker
``(target, write_id, part)`` into the commit log in the same transaction, as the JVM writer does: a
retried or speculative task finds the marker and commits nothing twice. A task commits only if its
whole partition reached it: when Spark fails a task upstream of the writer (a UDF raising midway), the
Python worker's input just ends, so the task checks that the JVM is still waiting for it
(``_worker_input.py``) and otherwise rolls back. Columns whose Arrow type is not the column's own (an
int64 into an integer column, a string into a uuid) go through a temporary table of the Arrow types in
the same transaction, and Postgres converts them as it converts the parameters of Spark's JDBC writer
(``INSERT ... SELECT``; strings parsed as the column's type).

The driver's part (checks before any row moves, the write's identity, the stage, the finish) is the
one ``lakebase_spark.write`` uses (``writing/plans.py``); ``commit`` finishes it, and ``abort`` drops
the stage of a write whose id was made up here (nobody can resume it).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyspark.sql.datasource import DataSourceArrowWriter, WriterCommitMessage

from ..errors import LakebaseSparkError, WriteError
from ..names import TableName, quote_identifier
from ..writing.commits import DONE
from ..writing.jobs import JobFailure
from ..writing.plans import Database, WritePlan
from ..writing.tables import Column
from ._worker_input import input_arrived
from .logins import Login

if TYPE_CHECKING:
    import psycopg
    import pyarrow as pa

__all__ = ["Committed", "LakebaseWriter", "LoginConnector", "copy_partition"]

log = logging.getLogger(__name__)

#: Postgres type name -> the Arrow type its binary COPY takes as is.
_ARROW = {
    "bool": "bool",
    "int2": "int16",
    "int4": "int32",
    "int8": "int64",
    "float4": "float",
    "float8": "double",
    "text": "string",
    "varchar": "string",
    "bpchar": "string",
    "bytea": "binary",
    "date": "date32[day]",
}


@dataclass(frozen=True)
class LoginConnector:
    """Connections for the driver's part of a write, through the job's login."""

    login: Login

    @property
    def name(self) -> str:
        return self.login.database

    def open(self) -> psycopg.Connection[Any]:
        return self.login.psycopg(autocommit=True)


@dataclass
class Committed(WriterCommitMessage):
    """What a task reports: its partition, the rows it committed, whether another attempt had."""

    partition: int
    rows: int
    skipped: bool
    write_id: str = ""


class LakebaseWriter(DataSourceArrowWriter):
    """Writes partitions (executors) and finishes the write (driver); picklable."""

    def __init__(self, plan: WritePlan, login: Login) -> None:
        self.plan = plan
        self.login = login

    def write(self, iterator: Iterator[pa.RecordBatch]) -> Committed:
        if self.plan.skipped is not None:  # this write id finished before: nothing to write
            return Committed(_task()[0], 0, True, self.plan.write_id)
        return copy_partition(self.plan, self.login, self.plan.write_id, iterator)

    def commit(self, messages: list[WriterCommitMessage | None]) -> None:
        plan = self.plan
        if plan.skipped is not None:
            log.info(
                "lakebase: write %s into %s had finished before; nothing written", plan.write_id, plan.target
            )
            return
        done = [m for m in messages if m is not None]
        if plan.stage is not None:
            partitions = len(messages)
            _check_partitions(plan, partitions)
        rows = plan.finish()
        log.info(
            "lakebase: %s of %d rows into %s (write %s, %d partitions)",
            plan.request.mode,
            rows,
            plan.target,
            plan.write_id,
            len(done),
        )

    def abort(self, messages: list[WriterCommitMessage | None]) -> None:
        if self.plan.skipped is not None:
            return
        self.plan.abandon()
        log.warning(
            "lakebase: write %s into %s failed; %s",
            self.plan.write_id,
            self.plan.target,
            self.plan.failed(JobFailure(RuntimeError("a task failed"), settled=False)),
        )


def copy_partition(
    plan: WritePlan, login: Login, write_id: str, iterator: Iterator[pa.RecordBatch]
) -> Committed:
    """This task's partition in one COPY, committed with its marker only if the whole partition reached
    this task (``input_arrived``): once per (write id, partition)."""
    partition, attempt = _task()
    into, commits = plan.into, plan.into_commits
    log_table, target = commits.table.quoted(), into.quoted()
    connection = login.adbc()
    try:
        with connection.cursor() as cursor:
            earlier = _marker(cursor, log_table, target, write_id, partition)
            if earlier is not None and earlier.whole:  # committed whole before (or the write is done)
                connection.rollback()
                return Committed(partition, 0, True, write_id)
            rows = _copy(cursor, plan, into, iterator)
            arrived = input_arrived()
            if arrived is False:
                connection.rollback()
                raise WriteError(
                    f"lakebase: partition {partition} of the write into {into} did not reach its writer "
                    f"whole ({rows} rows came before Spark failed or stopped the task upstream; see the "
                    "task's own error): nothing of it was committed, and its retry (or a rerun with the same "
                    "write id) writes it whole"
                )
            if arrived is None:
                _warn_unverified()
            written = _settle(cursor, log_table, target, write_id, partition, rows, attempt, arrived)
            if not written:
                connection.rollback()  # another attempt of this partition committed it first
                return Committed(partition, 0, True, write_id)
            connection.commit()
        return Committed(partition, rows, False, write_id)
    except LakebaseSparkError:
        raise
    except Exception as e:
        raise WriteError(
            f"lakebase: writing into {into} failed (partition {partition}): {e}; nothing of this "
            "partition was committed"
        ) from None
    finally:
        connection.close()


def _copy(cursor: Any, plan: WritePlan, into: TableName, iterator: Iterator[pa.RecordBatch]) -> int:
    """Stream the task's rows into ``into`` (one COPY, uncommitted); the rows it took."""
    import pyarrow as pa

    batches = (batch for batch in iterator if batch.num_rows)
    first = next(batches, None)
    if first is None:
        return 0
    conformed, direct = _conform(first, plan.pairs)
    counted = [0]

    def stream() -> Iterator[pa.RecordBatch]:
        yield conformed
        counted[0] += conformed.num_rows
        for batch in batches:
            yield _conform(batch, plan.pairs)[0]
            counted[0] += batch.num_rows

    # One COPY for the whole partition: ADBC streams the batches as they come.
    reader = pa.RecordBatchReader.from_batches(conformed.schema, stream())
    if direct:
        cursor.adbc_ingest(into.name, reader, mode="append", db_schema_name=into.schema)
    else:
        staging = f"lakebase_spark_task_{uuid.uuid4().hex[:16]}"
        cursor.adbc_ingest(staging, reader, mode="create", temporary=True)
        strings = {
            f.name for f in conformed.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
        }
        cursor.execute(_insert_select(into.quoted(), staging, plan.pairs, strings))
        cursor.execute(f"DROP TABLE {quote_identifier(staging)}")
    return counted[0]


def _task() -> tuple[int, int]:
    """(partition, attempt) of the running task."""
    from pyspark import TaskContext

    context = TaskContext.get()
    return (context.partitionId(), context.attemptNumber()) if context else (0, 0)


@dataclass(frozen=True)
class _Marker:
    """A partition's row in the commit log, or the write's DONE row."""

    rows: int
    #: Whether the rows it counts are the whole partition: the write is done, the JVM writer committed
    #: it (its tasks see upstream failures), or a jar-free task saw its whole input arrive.
    whole: bool
    #: The transaction that committed the marker, and with it the partition's rows (their ``xmin``).
    xid: str


#: ``detail`` of a jar-free partition marker: whether the task saw its whole input arrive. A marker
#: without it (an earlier version's, or a Spark build where that cannot be told) is unverified.
WHOLE, UNVERIFIED = '{"input":"whole"}', '{"input":"unverified"}'


def _marker(
    cursor: Any, log_table: str, into: str, write_id: str, partition: int, *, lock: bool = False
) -> _Marker | None:
    """The partition's marker (the write's DONE row counts as a whole one); ``lock`` takes it FOR UPDATE."""
    cursor.execute(
        f"SELECT part, rows, parts, detail, xmin::text FROM {log_table} "  # noqa: S608 - a quoted name
        "WHERE target = $1 AND write_id = $2 AND part IN ($3, $4) ORDER BY part"
        + (" FOR UPDATE" if lock else ""),
        parameters=(into, write_id, DONE, partition),
    )
    found = cursor.fetchall()
    if not found:
        return None
    part, rows, parts, detail, xid = found[0]  # DONE (-1) first
    return _Marker(int(rows), part == DONE or parts >= 0 or detail == WHOLE, str(xid))


def _settle(
    cursor: Any,
    log_table: str,
    into: str,
    write_id: str,
    partition: int,
    rows: int,
    attempt: int,
    arrived: bool | None,
) -> bool:
    """Insert this attempt's marker next to its copied rows; whether to commit them.

    When another attempt committed the partition first, its marker decides: a whole one stands (this
    attempt's rows are rolled back). An unverified one with fewer rows was cut short (a Spark build
    where ``input_arrived`` cannot tell, or an earlier version's writer): its rows (by the ``xmin`` of
    its transaction) make way for this attempt's, in this transaction.
    """
    cursor.execute(
        f"INSERT INTO {log_table} (target, write_id, part, parts, rows, attempt, detail) "  # noqa: S608
        "VALUES ($1, $2, $3, -1, $4, $5, $6) ON CONFLICT (target, write_id, part) DO NOTHING RETURNING 1",
        parameters=(into, write_id, partition, rows, attempt, WHOLE if arrived else UNVERIFIED),
    )
    if cursor.fetchall():
        return True
    earlier = _marker(cursor, log_table, into, write_id, partition, lock=True)
    if earlier is None or earlier.whole or rows == earlier.rows:
        return False  # gone meanwhile (the write finished and was pruned), whole, or the same rows
    if rows < earlier.rows:
        raise WriteError(
            f"lakebase: partition {partition} of the write into {into} brought {rows} rows, but an earlier "
            f"attempt committed {earlier.rows} for it: the partition's rows differ between attempts (a "
            "nondeterministic input?); nothing of this attempt was committed"
        )
    cursor.execute(f"DELETE FROM {into} WHERE xmin = $1::xid", parameters=(earlier.xid,))  # noqa: S608
    cursor.execute(
        f"UPDATE {log_table} SET rows = $4, attempt = $5, detail = $6, committed_at = now() "  # noqa: S608
        "WHERE target = $1 AND write_id = $2 AND part = $3",
        parameters=(into, write_id, partition, rows, attempt, WHOLE if arrived else UNVERIFIED),
    )
    log.warning(
        "lakebase: partition %d of the write into %s had been committed with %d rows by an attempt whose "
        "input may have been cut short; replaced by this attempt's %d rows",
        partition,
        into,
        earlier.rows,
        rows,
    )
    return True


_warned: list[bool] = []


def _warn_unverified() -> None:
    if not _warned:
        _warned.append(True)
        log.warning(
            "lakebase: this Spark build's Python worker does not show whether a task's input arrived whole "
            "(pyspark.worker keeps its input stream under another name); partitions are committed as "
            "unverified, and an attempt that brings more rows replaces them"
        )


def _conform(batch: pa.RecordBatch, pairs: list[tuple[str, Column]]) -> tuple[pa.RecordBatch, bool]:
    """The batch with the table's column names; whether every column has the table column's Arrow type
    (then binary COPY takes it as is), else the Arrow types stay for a temporary table."""
    import pyarrow as pa

    names = [column.name for _, column in pairs]
    arrays = [batch.column(name) for name, _ in pairs]
    direct = all(_takes(column, array.type) for array, (_, column) in zip(arrays, pairs, strict=True))
    return pa.RecordBatch.from_arrays(arrays, names=names), direct


def _takes(column: Column, arrow: pa.DataType) -> bool:
    """Whether binary COPY takes values of this Arrow type into the column as they are."""
    import pyarrow as pa

    if column.array:
        return False
    if pa.types.is_timestamp(arrow):
        return bool(column.base == ("timestamptz" if arrow.tz else "timestamp"))
    if pa.types.is_decimal(arrow):
        return column.base == "numeric"
    return _ARROW.get(column.base) == str(arrow)


def _insert_select(into: str, staging: str, pairs: list[tuple[str, Column]], strings: set[str]) -> str:
    """Move a task's temporary table into the target: Postgres converts each column as it converts the
    parameters of Spark's JDBC writer (assignment), and parses a string as the column's type."""
    columns = ", ".join(quote_identifier(column.name) for _, column in pairs)
    selected = []
    for _, column in pairs:
        name = quote_identifier(column.name)
        parse = column.name in strings and column.category != "S" and not column.array
        selected.append(f"{name}::{column.type}" if parse else name)
    return f"INSERT INTO {into} ({columns}) SELECT {', '.join(selected)} FROM {quote_identifier(staging)}"  # noqa: S608


def _check_partitions(plan: WritePlan, partitions: int) -> None:
    """Every partition 0..n-1 staged exactly once (the markers the stage's log holds)."""
    db: Database = plan.db
    stage = plan.stage
    assert stage is not None

    def count(conn: Any) -> tuple[int, int, int]:
        return stage.commits.staged(conn, stage.table, plan.write_id)

    committed, _, _ = db.retrying(count)
    if committed != partitions:
        raise WriteError(
            f"{plan.request.mode} into {plan.target}: the staging table's log holds {committed} "
            f"partition(s) of write id {plan.write_id!r}, this run has {partitions}: a rerun must split the "
            "rows the same way; nothing was applied"
        )
