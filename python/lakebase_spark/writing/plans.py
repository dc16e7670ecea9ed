"""The driver's side of one write, whatever moves the rows (the JVM COPY job, or the jar-free data source's
Python tasks): the argument checks, the table checks before any row moves, the write's identity in the
commit log, its stage, and the finish (record it done, or apply the stage in one transaction).

Everything here is picklable: the jar-free data source ships the plan to executors and back to the
driver, where its ``commit`` runs in another Python worker.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from psycopg import sql

from ..errors import WriteError, WriteInputError
from ..names import TableLike, TableName
from .commits import CommitLog, WriteRecord
from .results import WriteResult
from .staging import Stage, StageMismatch
from .tables import Column, TableInfo, check_assignments, match_columns
from .upsert import apply_statement, check_upsert_key, upsert_source
from .write_ids import check_write_id

if TYPE_CHECKING:
    import psycopg
    from pyspark.sql.types import StructType

    from .jobs import JobFailure

__all__ = ["MODES", "Database", "Mode", "WritePlan", "WriteRequest", "plan_write"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

Mode = Literal["append", "overwrite", "upsert", "errorifexists", "error", "ignore"]
MODES = ("append", "overwrite", "upsert", "errorifexists", "error", "ignore")


@dataclass(frozen=True)
class WriteRequest:
    """A write's arguments, checked: what to write where, how, under which id."""

    target: TableName
    mode: str
    keys: list[str]
    order: list[str]
    write_id: str
    atomic: bool
    #: Whether the caller named the write id (a random one can never be resumed).
    named: bool
    #: What this write is, recorded with its id: a later call reusing the id must be the same write.
    identity: dict[str, Any]

    @classmethod
    def of(
        cls,
        columns: Sequence[str],
        table: TableLike,
        *,
        mode: str = "append",
        key: str | Sequence[str] | None = None,
        order_by: str | Sequence[str] | None = None,
        write_id: str | None = None,
        atomic: bool = False,
    ) -> WriteRequest:
        if mode not in MODES:
            raise WriteInputError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        if mode == "error":
            mode = "errorifexists"
        keys = column_list(key, "key")
        order = column_list(order_by, "order_by")
        if mode == "upsert" and not keys:
            raise WriteInputError(
                "mode='upsert' needs key=: the column(s) that identify a row, e.g. key='id'"
            )
        if mode != "upsert" and (keys or order):
            raise WriteInputError(f"key= and order_by= are for mode='upsert', not mode={mode!r}")
        if atomic and mode != "append":
            raise WriteInputError("atomic= is for mode='append' (overwrite and upsert are always atomic)")
        named = write_id is not None
        write_id = check_write_id(write_id) if write_id is not None else uuid.uuid4().hex
        target = TableName.parse(table)
        missing = [c for c in [*keys, *order] if c not in columns]
        if missing:
            raise WriteInputError(
                f"column(s) {missing} are not columns of the DataFrame (columns: {list(columns)})"
            )
        if not columns:
            raise WriteInputError("the DataFrame has no columns to write")
        identity = {"columns": list(columns), "key": keys, "order_by": order, "atomic": atomic}
        return cls(target, mode, keys, order, write_id, atomic, named, identity)

    @property
    def staged(self) -> bool:
        return self.mode in ("overwrite", "upsert") or self.atomic


class Connector(Protocol):
    """Opens an autocommit psycopg connection to the write's database; ``name`` names the database."""

    name: str

    def open(self) -> psycopg.Connection[Any]: ...


@dataclass(frozen=True)
class Database:
    """Connections to the write's database; :meth:`retrying` reruns an idempotent step after a drop."""

    connector: Any  # a Connector; Any so that a dataclass of it stays picklable whatever it holds
    ATTEMPTS = 3

    def connect(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] = self.connector.open()
        return conn

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
                        f"lost the connection to database {self.connector.name!r} {attempt} times while "
                        f"finishing the write ({e.sqlstate}); run it again with the same write_id to finish "
                        "it"
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


@dataclass(frozen=True)
class WritePlan:
    """A checked write: where its rows go, and how it finishes. ``skipped`` says it needs no rows at all."""

    request: WriteRequest
    db: Database
    #: (DataFrame column, table column) in the DataFrame's order.
    pairs: list[tuple[str, Column]] = field(default_factory=list)
    stage: Stage | None = None
    skipped: WriteResult | None = None

    @property
    def target(self) -> TableName:
        return self.request.target

    @property
    def write_id(self) -> str:
        return self.request.write_id

    @property
    def commits(self) -> CommitLog:
        return CommitLog.for_target(self.target)

    @property
    def into(self) -> TableName:
        """Where the tasks write: the stage, or the target."""
        return self.stage.table if self.stage else self.target

    @property
    def into_commits(self) -> CommitLog:
        return self.stage.commits if self.stage else self.commits

    @property
    def columns(self) -> list[str]:
        return [column.name for _, column in self.pairs]

    def finish(self) -> int:
        """After every task committed: record the write done (append), or apply the stage."""
        rows = self._finish_append() if self.stage is None else self._apply_stage(self.stage)
        self.db.prune(self.commits)
        return rows

    def failed(self, failure: JobFailure) -> WriteError:
        """The error for a failed job: what the target (or stage) holds, and how to finish."""
        held = self._held(failure)
        cause = _cause(failure.error)
        r = self.request
        if self.stage is None:
            return WriteError(
                f"{r.mode} into {self.target} failed: {cause}. The target holds {held} committed under "
                f"write id {r.write_id!r} and nothing of the others; rerun with write_id={r.write_id!r} to "
                "write only the rest (exactly once), or pass atomic=True for all-or-nothing appends"
            )
        stage = self.stage.table
        return WriteError(
            f"{r.mode} into {self.target} failed: {cause}. The target is unchanged. Staging table {stage} "
            f"holds {held} copied so far: rerun with write_id={r.write_id!r} to resume; or drop {stage} "
            f"(its commit log {self.stage.commits.table} goes with it), and a rerun stages every row again"
        )

    def abandon(self) -> None:
        """A failed write whose id was made up here can never be resumed: drop its stage (best effort)."""
        if self.stage is None or self.request.named:
            return
        from psycopg import Error

        try:
            with self.db.connect() as conn:
                self.stage.drop(conn)
        except Error as e:
            log.warning("could not drop staging table %s of a failed write (%s)", self.stage.table, e)

    def _held(self, failure: JobFailure) -> str:
        """What the commit log of a failed job holds: exact once the job's tasks have all ended."""
        into, commits = self.into, self.into_commits
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

    def _finish_append(self) -> int:
        r = self.request

        def finish(conn: psycopg.Connection[Any]) -> int:
            _, rows = self.commits.committed(conn, self.target, r.write_id)
            if not self.commits.finish(conn, self.target, r.write_id, rows, r.mode, r.identity):
                log.info("another run finished write %s into %s first", r.write_id, self.target)
            return rows

        rows = self.db.retrying(finish)
        log.info("appended %d rows into %s (write %s)", rows, self.target, r.write_id)
        return rows

    def _apply_stage(self, stage: Stage) -> int:
        names = {name: column.name for name, column in self.pairs}
        keys = [names[k] for k in self.request.keys]
        order = [names[c] for c in self.request.order]
        rows = self.db.retrying(lambda conn: self._apply(conn, stage, keys, order))
        log.info("%s of %d rows into %s (write %s)", self.request.mode, rows, self.target, self.write_id)
        return rows

    def _apply(self, conn: psycopg.Connection[Any], stage: Stage, keys: list[str], order: list[str]) -> int:
        from psycopg import errors as pg_errors

        r = self.request
        done = self.commits.done(conn, self.target, r.write_id)
        if done is not None:  # an earlier attempt committed, and only its answer was lost
            stage.drop(conn)
            return done
        try:
            with conn.transaction():
                if r.mode == "upsert":
                    source, staged = upsert_source(conn, stage.table, self.target, keys, order)
                    stage.verify(conn, r.write_id, staged)
                else:
                    source = stage.table.sql()
                    stage.verify(conn, r.write_id)
                if r.mode == "overwrite":
                    # DELETE, not TRUNCATE: TRUNCATE is not MVCC-safe (older snapshots would see no rows).
                    conn.execute(sql.SQL("DELETE FROM {}").format(self.target.sql()))
                statement = apply_statement(
                    self.target, self.columns, source, keys if r.mode == "upsert" else None
                )
                rows = max(conn.execute(statement).rowcount, 0)
                if not self.commits.finish(conn, self.target, r.write_id, rows, r.mode, r.identity):
                    raise _AlreadyDone
                stage.drop(conn)
        except (WriteInputError, StageMismatch):
            stage.drop(conn)  # bad input, or a stage that cannot be trusted: a rerun stages again
            raise
        except _AlreadyDone:
            stage.drop(conn)
            return self.commits.done(conn, self.target, r.write_id) or 0
        except pg_errors.OperationalError:
            raise  # the connection dropped: retried on a new one
        except pg_errors.Error as e:
            raise WriteError(
                f"{r.mode} into {self.target} failed in its final transaction, which was rolled back: the "
                f"target is unchanged. Postgres said: {e.diag.message_primary} ({e.sqlstate}). Staging table "
                f"{stage.table} is kept: rerun with write_id={r.write_id!r} to retry the final step"
            ) from None
        return rows


class _AlreadyDone(Exception):
    """Another run of the same write id finished first; roll back this one's apply."""


def _refuse_replica(conn: psycopg.Connection[Any], db: Database) -> None:
    """A read replica (a hot standby) takes no writes: say so before anything is created or moved."""
    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    if row and row[0]:
        raise WriteInputError(
            f"database {db.connector.name!r} is on a read replica (a hot standby, read-only): write to the "
            "primary (the branch's read-write endpoint, or the instance's read-write host) instead; "
            "nothing was written"
        )


def plan_write(
    request: WriteRequest,
    schema: StructType,
    db: Database,
    create_table: Callable[[psycopg.Connection[Any]], TableInfo],
    *,
    begin: bool = True,
) -> WritePlan:
    """Check the write against the table and set it up (before any row moves), on one connection.

    ``begin=False`` checks and creates but records no write: a stream's micro-batches each record their
    own (their ids are known to the tasks only).

    ``create_table(conn)`` creates a missing table (with Spark's JDBC type mapping) and returns it.
    The connection is closed before the rows move: a job can outlast a connection (idle timeouts, a
    database restart), so the finish opens its own.
    """
    r = request
    commits = CommitLog.for_target(r.target)
    with db.connect() as conn:
        _refuse_replica(conn, db)
        info = TableInfo.load(conn, r.target)
        commits.create(conn)
        record = commits.record(conn, r.target, r.write_id) if begin else None
        if record is not None:
            _check_same_write(record, r)
            if record.done:
                log.info(
                    "write %s into %s already finished (%d rows): nothing to do",
                    r.write_id,
                    r.target,
                    record.rows,
                )
                return WritePlan(
                    r, db, skipped=WriteResult(str(r.target), r.write_id, r.mode, record.rows, skipped=True)
                )
        elif info is not None and r.mode == "errorifexists":  # (a rerun of a failed one resumes instead)
            raise WriteInputError(f"table {r.target} already exists (mode={r.mode!r}); nothing was written")
        elif info is not None and r.mode == "ignore":
            return WritePlan(r, db, skipped=WriteResult(str(r.target), r.write_id, r.mode, 0, skipped=True))
        if info is None and r.mode == "upsert":
            raise WriteInputError(
                f"table {r.target} does not exist: create it with a primary key or unique index on "
                f"{r.keys} before upserting into it"
            )
        if info is not None:
            pairs = match_columns(schema, info)  # bad input fails here, before anything is written
            check_assignments(conn, info, schema, pairs)
            if r.mode == "upsert":
                check_upsert_key(info, r.keys, pairs)
        if begin:
            commits.begin(conn, r.target, r.write_id, r.mode, r.identity)
        if info is None:
            info = create_table(conn)
            pairs = match_columns(schema, info)
        stage = Stage.of(r.target, r.write_id) if r.staged else None
        columns = sql.SQL(", ").join(sql.Identifier(column.name) for _, column in pairs)
        if stage is not None and stage.create(conn, r.target, columns):
            log.info("write %s into %s resumes staging table %s", r.write_id, r.target, stage.table)
    return WritePlan(r, db, pairs, stage)


def _check_same_write(record: WriteRecord, r: WriteRequest) -> None:
    """Refuse a call that reuses a write id for another write than the one it named first."""
    if record.mode is None:
        return  # logged by a version that did not record what a write was
    first = {k: record.detail.get(k) for k in r.identity}
    differs = record.mode != r.mode or any(
        sorted(first[k] or []) != sorted(r.identity[k] or [])
        if k == "columns"
        else (first[k] or None) != (v or None)
        for k, v in r.identity.items()
    )
    if differs:
        raise WriteInputError(
            f"write id {r.write_id!r} into {r.target} was first used for another write "
            f"({record.describe()}); "
            f"this call is mode={r.mode!r}, columns {r.identity['columns']}"
            + "".join(f", {k}={v!r}" for k, v in r.identity.items() if k != "columns" and v)
            + ". A write id names one write: pass a new write_id (or none, for a random one). Nothing was "
            "written"
        )


def column_list(columns: str | Sequence[str] | None, what: str) -> list[str]:
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
    """The line of a failure that says what went wrong: our writer's own message when there is one, else
    the exception a Python worker raised (a UDF upstream of the writer), else Spark's first line."""
    text = str(e)
    found = _LAKEBASE_LINE.search(text)
    if found:
        return found.group(0)
    _, traceback, after = text.partition("Traceback (most recent call last)")
    if traceback:
        # Its frames are indented; the exception line ("RuntimeError: ...") is the first that is not.
        raised = next((line for line in after.splitlines()[1:] if line.strip() and not line[0].isspace()), "")
        if raised:
            return f"a Python worker raised {raised.strip()[:1000]}"
    # py4j's own first line ("An error occurred while calling o628.save.") says nothing: Spark's follows it.
    lines = [line.strip().lstrip(": ") for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("An error occurred while calling")]
    return lines[0][:1000] if lines else type(e).__name__
