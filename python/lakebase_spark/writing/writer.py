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
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from psycopg import sql

from ..connection import connect, resolve_address
from ..errors import WriteError, WriteInputError
from ..names import TableLike, TableName
from ..options import lakebase_options
from ..service import BrokerService, shared_broker_service
from ..targets import DEFAULT_DATABASE, Address
from .commits import CommitLog, WriteRecord
from .jobs import COPY_SOURCE, CopyJob, JobFailure
from .results import WriteResult
from .staging import Stage, StageMismatch
from .tables import TableInfo, check_assignments, match_columns
from .upsert import apply_statement, check_upsert_key, upsert_source
from .write_ids import check_write_id

if TYPE_CHECKING:
    import psycopg
    from databricks.sdk import WorkspaceClient
    from pyspark.sql import DataFrame

__all__ = ["COPY_SOURCE", "WriteResult", "write"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

Mode = Literal["append", "overwrite", "upsert", "errorifexists", "error", "ignore"]
MODES = ("append", "overwrite", "upsert", "errorifexists", "error", "ignore")


def write(
    df: DataFrame,
    table: TableLike,
    *,
    mode: Mode = "append",
    endpoint: str | None = None,
    instance: str | None = None,
    database: str = DEFAULT_DATABASE,
    key: str | Sequence[str] | None = None,
    order_by: str | Sequence[str] | None = None,
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
        repeat in the input, the column(s) whose greatest values win (compared in order). Different rows
        of one key that tie on every ``order_by`` column are refused: the winner would be arbitrary.
    write_id:
        Names the write for exactly-once reruns (Delta's ``txnAppId``/``txnVersion``): a rerun with the
        id of a finished write does nothing; one of a failed write finishes it. The rerun must be the same
        write (mode, columns, key; the same rows split into the same partitions): a call reusing the id
        for another write is refused, naming the first use. Ids are remembered for 30 days
        (``commits.RETENTION``). At most 512 characters, no NUL. Default: a new random id.
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
    if mode == "error":
        mode = "errorifexists"
    keys = _column_list(key, "key")
    order = _column_list(order_by, "order_by")
    if mode == "upsert" and not keys:
        raise WriteInputError("mode='upsert' needs key=: the column(s) that identify a row, e.g. key='id'")
    if mode != "upsert" and (keys or order):
        raise WriteInputError(f"key= and order_by= are for mode='upsert', not mode={mode!r}")
    if atomic and mode != "append":
        raise WriteInputError("atomic= is for mode='append' (overwrite and upsert are always atomic)")
    if num_partitions is not None and num_partitions < 1:
        raise WriteInputError(f"num_partitions must be at least 1, got {num_partitions}")
    write_id = check_write_id(write_id) if write_id is not None else uuid.uuid4().hex
    target = TableName.parse(table)
    missing = [c for c in [*keys, *order] if c not in df.columns]
    if missing:
        raise WriteInputError(f"column(s) {missing} are not columns of the DataFrame (columns: {df.columns})")
    if not df.columns:
        raise WriteInputError("the DataFrame has no columns to write")
    # What this write is, recorded with its id: a later call reusing the id must be the same write.
    identity = {"columns": list(df.columns), "key": keys, "order_by": order, "atomic": atomic}

    service = broker.start() if broker is not None else shared_broker_service(workspace_client)
    # Kept as LakebaseOptions: a dict whose repr masks the broker secret.
    spark_options = lakebase_options(endpoint, instance=instance, database=database, broker=service)
    db = _Database(endpoint, instance, database, service)
    commits = CommitLog.for_target(target)
    # Checks and set-up on one connection, closed before the Spark job: a job can outlast a connection
    # (idle timeouts, a database restart), so the finishing step opens its own.
    with db.connect() as conn:
        info = TableInfo.load(conn, target)
        commits.create(conn)
        record = commits.record(conn, target, write_id)
        if record is not None:
            _check_same_write(record, target, write_id, mode, identity)
            if record.done:
                log.info(
                    "write %s into %s already finished (%d rows): nothing to do",
                    write_id,
                    target,
                    record.rows,
                )
                return WriteResult(str(target), write_id, mode, record.rows, skipped=True)
        elif info is not None and mode == "errorifexists":  # (a rerun of a failed one resumes instead)
            raise WriteInputError(f"table {target} already exists (mode={mode!r}); nothing was written")
        elif info is not None and mode == "ignore":
            return WriteResult(str(target), write_id, mode, 0, skipped=True)
        if info is None and mode == "upsert":
            raise WriteInputError(
                f"table {target} does not exist: create it with a primary key or unique index on "
                f"{keys} before upserting into it"
            )
        if info is not None:
            pairs = match_columns(df.schema, info)  # bad input fails here, before anything is written
            check_assignments(conn, info, df.schema, pairs)
            if mode == "upsert":
                check_upsert_key(info, keys, pairs)
        commits.begin(conn, target, write_id, mode, identity)
        if info is None:
            info = _create_table(df, target, spark_options, conn)
            pairs = match_columns(df.schema, info)
        rows_df = df.coalesce(num_partitions) if num_partitions else df
        job = CopyJob(rows_df, pairs, spark_options, options or {}, write_id)
        stage = Stage.of(target, write_id) if mode in ("overwrite", "upsert") or atomic else None
        if stage is not None and stage.create(conn, target, job.column_list):
            log.info("write %s into %s resumes staging table %s", write_id, target, stage.table)
    finish = _Finish(db, job, target, commits, mode, identity)
    rows = finish.append() if stage is None else finish.staged(stage, keys, order)
    db.prune(commits)
    return WriteResult(str(target), write_id, mode, rows)


def _check_same_write(
    record: WriteRecord, target: TableName, write_id: str, mode: str, identity: dict[str, Any]
) -> None:
    """Refuse a call that reuses ``write_id`` for another write than the one it named first."""
    if record.mode is None:
        return  # logged by a version that did not record what a write was
    first = {k: record.detail.get(k) for k in identity}
    differs = record.mode != mode or any(
        sorted(first[k] or []) != sorted(identity[k] or [])
        if k == "columns"
        else (first[k] or None) != (v or None)
        for k, v in identity.items()
    )
    if differs:
        raise WriteInputError(
            f"write id {write_id!r} into {target} was first used for another write ({record.describe()}); "
            f"this call is mode={mode!r}, columns {identity['columns']}"
            + "".join(f", {k}={v!r}" for k, v in identity.items() if k != "columns" and v)
            + ". A write id names one write: pass a new write_id (or none, for a random one). Nothing was "
            "written"
        )


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

    def prune(self, commits: CommitLog) -> None:
        """Expire old commit-log rows (at most every few minutes); a failure here fails no write."""
        from psycopg import Error

        try:
            with self.connect() as conn:
                commits.prune(conn)
        except Error as e:
            log.warning("could not prune commit log %s (%s); the next write tries again", commits.table, e)


class _Finish:
    """Runs a write's Spark job and finishes the write: records it done, or applies its stage."""

    def __init__(
        self,
        db: _Database,
        job: CopyJob,
        target: TableName,
        commits: CommitLog,
        mode: str,
        identity: dict[str, Any],
    ) -> None:
        self.db, self.job, self.target, self.commits = db, job, target, commits
        self.mode, self.identity = mode, identity

    @property
    def write_id(self) -> str:
        return self.job.write_id

    def _held(self, failure: JobFailure, into: TableName, commits: CommitLog) -> str:
        """What the commit log of a failed job holds: exact once the job's tasks have all ended."""
        parts, rows = self.db.retrying(lambda conn: commits.committed(conn, into, self.write_id))
        if failure.settled:
            return f"the {parts} partition(s) ({rows} rows)"
        into_literal = "'" + into.quoted().replace("'", "''") + "'"
        id_literal = "'" + self.write_id.replace("'", "''") + "'"
        # Shown to the user to run, never executed here; both values are quoted as literals.
        query = f"SELECT count(*), sum(rows) FROM {commits.table} WHERE target = {into_literal}"  # noqa: S608
        query += f" AND write_id = {id_literal} AND part >= 0"
        return (
            f"at least {parts} partition(s) ({rows} rows; tasks of the failed job may still have been "
            f"committing: {query} gives the exact count)"
        )

    def append(self) -> int:
        failure = self.job.run(self.target, self.commits)
        if failure is not None:
            held = self._held(failure, self.target, self.commits)
            raise WriteError(
                f"{self.mode} into {self.target} failed: {_cause(failure.error)}. The target holds {held} "
                f"committed under write id {self.write_id!r} and nothing of the others; rerun with "
                f"write_id={self.write_id!r} to write only the rest (exactly once), or pass atomic=True for "
                "all-or-nothing appends"
            ) from failure.error

        def finish(conn: psycopg.Connection[Any]) -> int:
            _, rows = self.commits.committed(conn, self.target, self.write_id)
            if not self.commits.finish(conn, self.target, self.write_id, rows, self.mode, self.identity):
                log.info("another run finished write %s into %s first", self.write_id, self.target)
            return rows

        rows = self.db.retrying(finish)
        log.info("appended %d rows into %s (write %s)", rows, self.target, self.write_id)
        return rows

    def staged(self, stage: Stage, keys: list[str], order: list[str]) -> int:
        """COPY into the staging table, then apply it to the target in one transaction."""
        failure = self.job.run(stage.table, stage.commits)
        if failure is not None:
            held = self._held(failure, stage.table, stage.commits)
            raise WriteError(
                f"{self.mode} into {self.target} failed: {_cause(failure.error)}. The target is unchanged. "
                f"Staging table {stage.table} holds {held} copied so far: "
                f"rerun with write_id={self.write_id!r} to resume; or drop {stage.table} (its commit log "
                f"{stage.commits.table} goes with it), and a rerun stages every row again"
            ) from failure.error
        names = {name: column.name for name, column in self.job.pairs}
        table_keys, table_order = [names[k] for k in keys], [names[c] for c in order]
        rows = self.db.retrying(lambda conn: self._apply(conn, stage, table_keys, table_order))
        log.info("%s of %d rows into %s (write %s)", self.mode, rows, self.target, self.write_id)
        return rows

    def _apply(self, conn: psycopg.Connection[Any], stage: Stage, keys: list[str], order: list[str]) -> int:
        from psycopg import errors as pg_errors

        done = self.commits.done(conn, self.target, self.write_id)
        if done is not None:  # an earlier attempt committed, and only its answer was lost
            stage.drop(conn)
            return done
        columns = [column.name for _, column in self.job.pairs]
        try:
            with conn.transaction():
                if self.mode == "upsert":
                    source, staged = upsert_source(conn, stage.table, self.target, keys, order)
                    stage.verify(conn, self.write_id, staged)
                else:
                    source = stage.table.sql()
                    stage.verify(conn, self.write_id)
                if self.mode == "overwrite":
                    # DELETE, not TRUNCATE: TRUNCATE is not MVCC-safe (older snapshots would see no rows).
                    conn.execute(sql.SQL("DELETE FROM {}").format(self.target.sql()))
                statement = apply_statement(
                    self.target, columns, source, keys if self.mode == "upsert" else None
                )
                rows = max(conn.execute(statement).rowcount, 0)
                if not self.commits.finish(conn, self.target, self.write_id, rows, self.mode, self.identity):
                    raise _AlreadyDone
                stage.drop(conn)
        except (WriteInputError, StageMismatch):
            stage.drop(conn)  # bad input, or a stage that cannot be trusted: a rerun stages again
            raise
        except _AlreadyDone:
            stage.drop(conn)
            return self.commits.done(conn, self.target, self.write_id) or 0
        except pg_errors.OperationalError:
            raise  # the connection dropped: retried on a new one
        except pg_errors.Error as e:
            raise WriteError(
                f"{self.mode} into {self.target} failed in its final transaction, which was rolled back: the "
                f"target is unchanged. Postgres said: {e.diag.message_primary} ({e.sqlstate}). Staging table "
                f"{stage.table} is kept: rerun with write_id={self.write_id!r} to retry the final step"
            ) from None
        return rows


class _AlreadyDone(Exception):
    """Another run of the same write id finished first; roll back this one's apply."""


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


def _column_list(columns: str | Sequence[str] | None, what: str) -> list[str]:
    if columns is None:
        return []
    names = [columns] if isinstance(columns, str) else list(columns)
    if not all(isinstance(c, str) and c for c in names) or len(set(names)) != len(names):
        raise WriteInputError(
            f"{what} must be a column name or a list of distinct column names, got {columns!r}"
        )
    return names


_LAKEBASE_LINE = re.compile(r"lakebase: [^\n]*")


def _cause(e: BaseException) -> str:
    """The line of a Spark failure that says what went wrong: our writer's own message when there is one."""
    text = str(e)
    found = _LAKEBASE_LINE.search(text)
    if found:
        return found.group(0)
    # py4j's own first line ("An error occurred while calling o628.save.") says nothing: Spark's follows it.
    lines = [line.strip().lstrip(": ") for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("An error occurred while calling")]
    return lines[0][:1000] if lines else type(e).__name__
