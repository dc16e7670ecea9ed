"""``lakebase_spark.write``: COPY-speed writes that land exactly once, in every save mode plus upsert.

The rows move on the executors: each partition is one ``COPY ... FROM STDIN`` (text format) over a
connection from the ``lakebase`` provider, committed together with its marker in the commit log
(``commits.py``), so a retried, speculative or re-run task commits nothing twice. The driver does the
rest with psycopg: it checks the input against the table before any row moves, creates a missing
table with Spark's own type mapping, and, for the staged modes, applies the staged rows to the target
in one transaction:

- ``append``: rows go straight into the target (fastest). If the job fails, the target holds the
  partitions committed so far, all listed in the commit log under the write id; rerunning with the
  same ``write_id`` writes only the rest. ``atomic=True`` stages instead: all rows or none.
- ``overwrite``: rows are staged, then ``DELETE`` + ``INSERT ... SELECT`` in one transaction. Readers
  see the old rows or the new ones (MVCC), never an empty table; indexes, constraints, grants,
  triggers and dependent views stay, because the table itself stays.
- ``upsert``: rows are staged, then ``INSERT ... ON CONFLICT (key) DO UPDATE`` in one transaction.
- ``errorifexists``/``error`` and ``ignore`` behave as in Spark; a missing table is created first.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from psycopg import sql

from ..connection import connect, resolve_address
from ..errors import WriteError, WriteInputError
from ..options import LakebaseOptions, lakebase_options
from ..service import BrokerService, shared_broker_service
from ..targets import DEFAULT_DATABASE, Address
from .commits import CommitLog, stage_name
from .tables import Column, TableInfo, TableName, match_columns, quote_identifier

if TYPE_CHECKING:
    import psycopg
    from databricks.sdk import WorkspaceClient
    from pyspark.sql import DataFrame

__all__ = ["COPY_SOURCE", "WriteResult", "write"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

Mode = Literal["append", "overwrite", "upsert", "errorifexists", "error", "ignore"]
MODES = ("append", "overwrite", "upsert", "errorifexists", "error", "ignore")

#: The Spark data source that runs the COPY on the executors (jvm/.../CopyWriteSource.java).
COPY_SOURCE = "io.lakebase.spark.CopyWriteSource"
# Its option keys (WriteOptions.java); tests/test_contract.py checks the two sides agree.
WRITE_TABLE = "lakebase.write.table"
WRITE_COLUMNS = "lakebase.write.columns"
WRITE_ID = "lakebase.write.id"
WRITE_COMMITS = "lakebase.write.commits"
#: Test-only fault injection (README, "Fault injection"): a point, on the first attempt of some partitions.
WRITE_FAULT = "lakebase.write.fault"
WRITE_FAULT_PARTITIONS = "lakebase.write.fault.partitions"
WRITE_FAULT_POINTS = ("fail-after-commit", "halt-after-commit", "fail-before-commit", "halt-mid-copy")

MAX_WRITE_ID = 512
EXAMPLES = 5


@dataclass(frozen=True)
class WriteResult:
    """What a write did."""

    table: str
    write_id: str
    mode: str
    #: Rows written (upsert: rows inserted or updated); for a skipped write, what the first run wrote.
    rows: int
    #: True when nothing was done: the write id had already finished, or ``ignore`` found the table.
    skipped: bool = False


def write(
    df: DataFrame,
    table: str | tuple[str, str],
    *,
    mode: Mode = "append",
    endpoint: str | None = None,
    instance: str | None = None,
    database: str = DEFAULT_DATABASE,
    key: str | Sequence[str] | None = None,
    order_by: str | None = None,
    write_id: str | None = None,
    atomic: bool = False,
    num_partitions: int | None = None,
    broker: BrokerService | None = None,
    workspace_client: WorkspaceClient | None = None,
    options: dict[str, str] | None = None,
) -> WriteResult:
    """Write ``df`` into ``table`` on a Lakebase endpoint (or instance) with COPY, exactly once.

    Parameters
    ----------
    table:
        ``"schema.table"`` by Postgres' rules (unquoted names fold to lower case; double-quote others),
        or an exact ``(schema, table)`` tuple.
    mode:
        ``append``, ``overwrite`` (atomic), ``upsert`` (needs ``key``), ``errorifexists``/``error``,
        ``ignore``. A missing table is created with Spark's JDBC type mapping (not for upsert).
    key, order_by:
        Upsert only: the conflict key (columns with a unique index in the table) and, when a key can
        repeat in the input, the column whose greatest value wins.
    write_id:
        Names the write for exactly-once reruns (Delta's ``txnAppId``/``txnVersion``): a rerun with the
        id of a finished write does nothing; one of a failed write finishes it. The rerun must split the
        rows into the same partitions (same input and plan). Default: a new random id.
    atomic:
        For ``append``: stage the rows and apply them in one transaction, so a failed job leaves the
        target as it was (costs a second pass over the rows in Postgres).
    num_partitions:
        At most this many partitions (connections) write at once: ``df.coalesce(num_partitions)``.
    options:
        Extra options for the data source (e.g. the test-only fault points, see the README).
    """
    if mode not in MODES:
        raise WriteInputError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    keys = _key_list(key)
    if mode == "upsert" and not keys:
        raise WriteInputError("mode='upsert' needs key=: the column(s) that identify a row, e.g. key='id'")
    if mode != "upsert" and (keys or order_by):
        raise WriteInputError(f"key= and order_by= are for mode='upsert', not mode={mode!r}")
    if atomic and mode != "append":
        raise WriteInputError("atomic= is for mode='append' (overwrite and upsert are always atomic)")
    if num_partitions is not None and num_partitions < 1:
        raise WriteInputError(f"num_partitions must be at least 1, got {num_partitions}")
    write_id = _check_write_id(write_id) if write_id is not None else uuid.uuid4().hex
    target = TableName.parse(table)
    missing = [c for c in [*keys, *([order_by] if order_by else [])] if c not in df.columns]
    if missing:
        raise WriteInputError(f"column(s) {missing} are not columns of the DataFrame (columns: {df.columns})")
    if not df.columns:
        raise WriteInputError("the DataFrame has no columns to write")

    service = broker.start() if broker is not None else shared_broker_service(workspace_client)
    # Kept as LakebaseOptions: a dict whose repr masks the broker secret.
    spark_options = lakebase_options(endpoint, instance=instance, database=database, broker=service)
    db = _Database(endpoint, instance, database, service)
    commits = CommitLog.for_target(target)
    # Checks and set-up on one connection, closed before the Spark job: a job can outlast a connection
    # (idle timeouts, a database restart), so the finishing step opens its own.
    with db.connect() as conn:
        info = TableInfo.load(conn, target)
        if info is not None and mode in ("errorifexists", "error"):
            raise WriteInputError(f"table {target} already exists (mode={mode!r}); nothing was written")
        if info is not None and mode == "ignore":
            return WriteResult(str(target), write_id, mode, 0, skipped=True)
        if info is None and mode == "upsert":
            raise WriteInputError(
                f"table {target} does not exist: create it with a primary key or unique index on "
                f"{keys} before upserting into it"
            )
        if info is not None:
            pairs = match_columns(df.schema, info)  # bad input fails here, before anything is written
            if mode == "upsert":
                _check_upsert_key(info, keys, pairs)
        commits.create(conn)
        done = commits.done(conn, target, write_id)
        if done is not None:
            log.info("write %s into %s already finished (%d rows): nothing to do", write_id, target, done)
            return WriteResult(str(target), write_id, mode, done, skipped=True)
        if info is None:
            info = _create_table(df, target, spark_options, conn)
            pairs = match_columns(df.schema, info)
        rows_df = df.coalesce(num_partitions) if num_partitions else df
        job = _CopyJob(rows_df, pairs, spark_options, options or {}, write_id)
        staged = mode in ("overwrite", "upsert") or atomic
        stage = _Stage.create(conn, job, target) if staged else None
    if stage is None:
        rows = _append(db, job, target, commits)
    else:
        rows = _staged(db, job, target, commits, stage, mode, keys, order_by)
    return WriteResult(str(target), write_id, mode, rows)


class _Database:
    """Opens connections to the write's database; :meth:`retrying` reruns an idempotent step after a drop."""

    ATTEMPTS = 3

    def __init__(self, endpoint: str | None, instance: str | None, database: str, broker: BrokerService):
        self.endpoint, self.instance, self.database, self.broker = endpoint, instance, database, broker
        self._address: Address | None = None  # resolved once: each resolution is a workspace API call

    def connect(self) -> psycopg.Connection[Any]:
        if self._address is None:
            tokens = self.broker.broker
            self._address = resolve_address(tokens, endpoint=self.endpoint, instance=self.instance)
        return connect(
            endpoint=self.endpoint,
            instance=self.instance,
            database=self.database,
            broker=self.broker,
            address=self._address,
            autocommit=True,
        )

    def retrying(self, step: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        """Run ``step`` on a fresh connection; if the connection drops (a restart), run it again."""
        from psycopg import OperationalError

        for attempt in range(1, self.ATTEMPTS + 1):
            try:
                with self.connect() as conn:
                    return step(conn)
            except OperationalError as e:
                if attempt == self.ATTEMPTS:
                    raise WriteError(
                        f"lost the connection to database {self.database!r} {attempt} times while finishing "
                        f"the write ({e.sqlstate}); run it again with the same write_id to finish it"
                    ) from None
                log.info("connection lost while finishing a write (%s); reconnecting", e.sqlstate)
        raise AssertionError("unreachable")


@dataclass(frozen=True)
class _CopyJob:
    """One Spark job of the COPY data source: the rows, where they go, and under which write id."""

    df: DataFrame
    pairs: list[tuple[str, Column]]
    spark_options: LakebaseOptions  # holds the broker secret: its repr masks it
    extra: dict[str, str]
    write_id: str

    def run(self, into: TableName, commits: CommitLog) -> None:
        columns = ",".join(quote_identifier(column.name) for _, column in self.pairs)
        (
            self.df.write.format(COPY_SOURCE)
            .options(**self.spark_options)
            .options(**self.extra)
            .option(WRITE_TABLE, into.quoted())
            .option(WRITE_COLUMNS, columns)
            .option(WRITE_ID, self.write_id)
            .option(WRITE_COMMITS, commits.table.quoted())
            .mode("append")
            .save()
        )

    @property
    def column_list(self) -> sql.Composable:
        return sql.SQL(", ").join(sql.Identifier(column.name) for _, column in self.pairs)


def _append(db: _Database, job: _CopyJob, target: TableName, commits: CommitLog) -> int:
    try:
        job.run(target, commits)
    except Exception as e:
        parts, rows = db.retrying(lambda conn: commits.committed(conn, target, job.write_id))
        raise WriteError(
            f"append into {target} failed: {_cause(e)}. The target holds the {parts} partition(s) "
            f"({rows} rows) committed so far under write id {job.write_id!r} and nothing of the others; "
            f"rerun with write_id={job.write_id!r} to write only the rest (exactly once), or pass "
            "atomic=True for all-or-nothing appends"
        ) from e

    def finish(conn: psycopg.Connection[Any]) -> int:
        _, rows = commits.committed(conn, target, job.write_id)
        if not commits.finish(conn, target, job.write_id, rows):
            log.info("another run finished write %s into %s first", job.write_id, target)
        return rows

    rows = db.retrying(finish)
    log.info("appended %d rows into %s (write %s)", rows, target, job.write_id)
    return rows


@dataclass(frozen=True)
class _Stage:
    """The unlogged staging table of one write, and its own commit log."""

    table: TableName
    commits: CommitLog

    @classmethod
    def create(cls, conn: psycopg.Connection[Any], job: _CopyJob, target: TableName) -> _Stage:
        table = stage_name(target, job.write_id)
        stage = cls(table, CommitLog(table.sibling(table.name + "_commits"), unlogged=True))
        # Same column types as the target (numeric precision included), so bad values fail in the stage.
        conn.execute(
            sql.SQL("CREATE UNLOGGED TABLE IF NOT EXISTS {} AS SELECT {} FROM {} WITH NO DATA").format(
                table.sql(), job.column_list, target.sql()
            )
        )
        stage.commits.create(conn)
        return stage

    def drop(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(
            sql.SQL("DROP TABLE IF EXISTS {}, {}").format(self.table.sql(), self.commits.table.sql())
        )


def _staged(
    db: _Database,
    job: _CopyJob,
    target: TableName,
    commits: CommitLog,
    stage: _Stage,
    mode: str,
    keys: list[str],
    order_by: str | None,
) -> int:
    """COPY into the staging table, then apply it to the target in one transaction."""
    from psycopg import errors as pg_errors

    try:
        job.run(stage.table, stage.commits)
    except Exception as e:
        parts, rows = db.retrying(lambda conn: stage.commits.committed(conn, stage.table, job.write_id))
        raise WriteError(
            f"{mode} into {target} failed: {_cause(e)}. The target is unchanged. Staging table {stage.table} "
            f"holds {parts} partition(s) ({rows} rows) copied so far: rerun with write_id={job.write_id!r} "
            f"to resume, or drop {stage.table} and {stage.commits.table}"
        ) from e

    def apply(conn: psycopg.Connection[Any]) -> int:
        done = commits.done(conn, target, job.write_id)
        if done is not None:  # an earlier attempt committed, and only its answer was lost
            stage.drop(conn)
            return done
        source: sql.Composable = stage.table.sql()
        if mode == "upsert":
            try:
                source = _upsert_source(conn, job, stage.table, target, keys, order_by)
            except WriteInputError:
                stage.drop(conn)
                raise
        statement = _apply_statement(job, target, source, mode, keys)
        try:
            with conn.transaction():
                if mode == "overwrite":
                    # DELETE, not TRUNCATE: TRUNCATE is not MVCC-safe (older snapshots would see no rows).
                    conn.execute(sql.SQL("DELETE FROM {}").format(target.sql()))
                rows = max(conn.execute(statement).rowcount, 0)
                if not commits.finish(conn, target, job.write_id, rows):
                    raise _AlreadyDone
                stage.drop(conn)
        except _AlreadyDone:
            stage.drop(conn)
            return commits.done(conn, target, job.write_id) or 0
        except pg_errors.OperationalError:
            raise  # the connection dropped: retried on a new one
        except pg_errors.Error as e:
            raise WriteError(
                f"{mode} into {target} failed in its final transaction, which was rolled back: the target is "
                f"unchanged. Postgres said: {e.diag.message_primary} ({e.sqlstate}). Staging table "
                f"{stage.table} is kept: rerun with write_id={job.write_id!r} to retry the final step"
            ) from None
        return rows

    rows = db.retrying(apply)
    log.info("%s of %d rows into %s (write %s)", mode, rows, target, job.write_id)
    return rows


def _apply_statement(
    job: _CopyJob, target: TableName, source: sql.Composable, mode: str, keys: list[str]
) -> sql.Composed:
    statement = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
        target.sql(), job.column_list, job.column_list, source
    )
    if mode != "upsert":
        return statement
    conflict = sql.SQL(", ").join(sql.Identifier(k) for k in _table_keys(job, keys))
    updates = [
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c.name), sql.Identifier(c.name))
        for name, c in job.pairs
        if name not in keys
    ]
    action: sql.Composable = sql.SQL("DO NOTHING")
    if updates:
        action = sql.SQL("DO UPDATE SET {}").format(sql.SQL(", ").join(updates))
    return sql.SQL("{} ON CONFLICT ({}) {}").format(statement, conflict, action)


class _AlreadyDone(Exception):
    """Another run of the same write id finished first; roll back this one's apply."""


def _upsert_source(
    conn: psycopg.Connection[Any],
    job: _CopyJob,
    stage: TableName,
    target: TableName,
    keys: list[str],
    order_by: str | None,
) -> sql.Composable:
    """The staged rows to upsert, one per key; refuses NULL keys, and repeated keys without ``order_by``."""
    key_columns = [sql.Identifier(k) for k in _table_keys(job, keys)]
    key_list = sql.SQL(", ").join(key_columns)
    any_null = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(k) for k in key_columns)
    nulls = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(stage.sql(), any_null)).fetchone()
    if nulls and nulls[0]:
        raise WriteInputError(
            f"upsert into {target}: {nulls[0]} row(s) have a NULL in key {keys}; a NULL key matches no row, "
            "so each would be inserted again on every run. Filter them out or fill them; nothing was written"
        )
    if order_by is None:
        repeated = conn.execute(
            sql.SQL("SELECT {}, count(*) FROM {} GROUP BY {} HAVING count(*) > 1 LIMIT {}").format(
                key_list, stage.sql(), key_list, sql.Literal(EXAMPLES)
            )
        ).fetchall()
        if repeated:
            examples = [row[:-1] if len(row) > 2 else row[0] for row in repeated]
            raise WriteInputError(
                f"upsert into {target}: key {keys} repeats in the input, e.g. {examples}; Postgres cannot "
                "update a row twice in one statement. Deduplicate first, or pass order_by='<column>' to keep "
                "the row with the greatest value; nothing was written"
            )
        return stage.sql()
    order_column = sql.Identifier(_table_column(job, order_by))
    return sql.SQL("(SELECT DISTINCT ON ({}) * FROM {} ORDER BY {}, {} DESC NULLS LAST) AS latest").format(
        key_list, stage.sql(), key_list, order_column
    )


def _check_upsert_key(info: TableInfo, keys: list[str], pairs: list[tuple[str, Column]]) -> None:
    names = {name: column.name for name, column in pairs}
    table_keys = frozenset(names[k] for k in keys)
    if table_keys not in info.unique_keys:
        raise WriteInputError(
            f"upsert into {info.name} on key {keys} needs a primary key or unique index on exactly those "
            f"columns (the table has unique keys {[sorted(k) for k in info.unique_keys] or 'none'}): "
            f"ALTER TABLE {info.name} ADD PRIMARY KEY "
            f"({', '.join(map(quote_identifier, sorted(table_keys)))})"
        )


def _table_keys(job: _CopyJob, keys: list[str]) -> list[str]:
    return [_table_column(job, k) for k in keys]


def _table_column(job: _CopyJob, df_column: str) -> str:
    return next(column.name for name, column in job.pairs if name == df_column)


def _create_table(
    df: DataFrame, target: TableName, spark_options: dict[str, str], conn: psycopg.Connection[Any]
) -> TableInfo:
    """Create the table as Spark's JDBC writer would (its Postgres type mapping), with no rows."""
    (
        df.limit(0)
        .write.format("jdbc")
        .options(**spark_options)
        .option("dbtable", target.quoted())
        .mode("append")
        .save()
    )
    info = TableInfo.load(conn, target)
    if info is None:
        raise WriteError(f"creating table {target} through Spark's JDBC writer left no table behind")
    log.info("created table %s", target)
    return info


def _key_list(key: str | Sequence[str] | None) -> list[str]:
    if key is None:
        return []
    keys = [key] if isinstance(key, str) else list(key)
    if not all(isinstance(k, str) and k for k in keys) or len(set(keys)) != len(keys):
        raise WriteInputError(f"key must be a column name or a list of distinct column names, got {key!r}")
    return keys


def _check_write_id(write_id: str) -> str:
    if not isinstance(write_id, str) or not 0 < len(write_id) <= MAX_WRITE_ID or "\x00" in write_id:
        raise WriteInputError(f"write_id must be a string of 1 to {MAX_WRITE_ID} characters without NUL")
    return write_id


_LAKEBASE_LINE = re.compile(r"lakebase: [^\n]*")


def _cause(e: BaseException) -> str:
    """The line of a Spark failure that says what went wrong: our writer's own message when there is one."""
    text = str(e)
    found = _LAKEBASE_LINE.search(text)
    if found:
        return found.group(0)
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0][:1000] if lines else type(e).__name__
