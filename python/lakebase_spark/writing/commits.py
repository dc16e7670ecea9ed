"""The commit log that makes writes exactly once: one table per schema, ``lakebase_spark_commits``.

Rows, by ``part``:

- ``>= 0``, a partition marker: each partition of a write inserts ``(target, write_id, part)`` in the
  same transaction as its rows (see CopyDataWriter.java); the primary key makes a second commit of the
  same partition fail, so it rolls back.
- ``BEGUN`` (-2): a write with this id started; it records what the write is (``mode`` and ``detail``:
  columns, key, ...), so a later call reusing the id for another write is refused, naming the first.
- ``DONE`` (-1): the whole write finished (for staged writes in the same transaction as the final
  apply), which turns any rerun with the same write id into a no-op, like Delta's
  ``txnAppId``/``txnVersion``. It keeps the identity too.
- ``PRUNED`` (-3, target and write id empty): when the log was last pruned.

Retention (:meth:`CommitLog.prune`, run after each finished write, at most every ``PRUNE_EVERY``):
partition markers of a finished write are kept ``MARKER_GRACE`` after it finished, so a task still
running somewhere (speculation, an executor cut off from the driver) keeps colliding with them; a
write id is remembered ``RETENTION`` after its last change, then forgotten (a finished id can then run
again; an unfinished one starts over, and its staging tables are dropped).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from ..names import TableName

__all__ = [
    "BEGUN",
    "COMMITS_TABLE",
    "DONE",
    "MARKER_GRACE",
    "PRUNED",
    "RETENTION",
    "CommitLog",
    "WriteRecord",
    "stage_name",
]

log = logging.getLogger(__name__)

COMMITS_TABLE = "lakebase_spark_commits"
#: The ``part`` of the row that says a whole write is done ...
DONE = -1
#: ... that it started (and what it is) ...
BEGUN = -2
#: ... and, with an empty target and write id, when the log was last pruned.
PRUNED = -3

#: How long a write id is remembered after its last change (Delta's setTransactionRetentionDuration).
RETENTION = timedelta(days=30)
#: How long the partition markers of a finished write are kept: any task of it still running after the
#: job ended (a speculative copy, an executor cut off from the driver) must still find them.
MARKER_GRACE = timedelta(hours=1)
#: The log is pruned at most this often (by whichever writer claims the ``PRUNED`` row first).
PRUNE_EVERY = timedelta(minutes=10)

_DDL = """
CREATE {unlogged}TABLE IF NOT EXISTS {table} (
    target       text        NOT NULL,
    write_id     text        NOT NULL,
    part         integer     NOT NULL,
    parts        integer     NOT NULL,
    rows         bigint      NOT NULL,
    attempt      integer     NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now(),
    mode         text,
    detail       text,
    PRIMARY KEY (target, write_id, part)
)
"""


@dataclass(frozen=True)
class WriteRecord:
    """What a write id was used for, as its ``BEGUN`` or ``DONE`` row says."""

    mode: str | None
    detail: dict[str, Any]
    done: bool
    #: Rows written (``DONE``), or committed so far.
    rows: int
    parts: int
    at: datetime

    def describe(self) -> str:
        state = f"finished with {self.rows} rows" if self.done else "started, not finished"
        columns = self.detail.get("columns")
        return (
            f"mode={self.mode!r}"
            + (f", columns {columns}" if columns else "")
            + "".join(f", {k}={v!r}" for k, v in self.detail.items() if k != "columns" and v)
            + f", {state}, at {self.at:%Y-%m-%d %H:%M:%S %Z}"
        )


class CommitLog:
    """The commit log of ``table``'s schema (or a staging table's own, unlogged like its stage)."""

    def __init__(self, table: TableName, *, unlogged: bool = False) -> None:
        self.table = table
        self.unlogged = unlogged

    @classmethod
    def for_target(cls, target: TableName) -> CommitLog:
        return cls(target.sibling(COMMITS_TABLE))

    def create(self, conn: psycopg.Connection[Any]) -> None:
        ddl = sql.SQL(_DDL).format(
            unlogged=sql.SQL("UNLOGGED " if self.unlogged else ""), table=self.table.sql()
        )
        # Two writers creating it at the same moment: one gets a unique violation, and it exists either way.
        with contextlib.suppress(psycopg.errors.UniqueViolation):
            conn.execute(ddl)
        # A log made by an earlier version lacks the identity columns. Looked up first: ALTER TABLE takes
        # an exclusive lock even when it has nothing to do, and every partition's commit writes here.
        present = {
            name
            for (name,) in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
                "AND NOT attisdropped",
                (self.table.quoted(),),
            ).fetchall()
        }
        for column in ("mode", "detail"):
            if column not in present:
                conn.execute(
                    sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} text").format(
                        self.table.sql(), sql.Identifier(column)
                    )
                )

    def record(self, conn: psycopg.Connection[Any], target: TableName, write_id: str) -> WriteRecord | None:
        """What ``write_id`` was used for on ``target`` (its ``DONE`` row, else its ``BEGUN`` row)."""
        rows = conn.execute(
            sql.SQL(
                "SELECT part, mode, detail, rows, parts, committed_at FROM {} "
                "WHERE target = %s AND write_id = %s AND part IN (%s, %s) ORDER BY part"
            ).format(self.table.sql()),
            (target.quoted(), write_id, BEGUN, DONE),
        ).fetchall()
        if not rows:
            return None
        part, mode, detail, count, parts, at = rows[-1]  # DONE (-1) sorts after BEGUN (-2)
        if part == BEGUN:
            parts, count = self.committed(conn, target, write_id)
        return WriteRecord(
            mode, json.loads(detail) if detail else {}, part == DONE, int(count), int(parts), at
        )

    def begin(
        self,
        conn: psycopg.Connection[Any],
        target: TableName,
        write_id: str,
        mode: str,
        detail: dict[str, Any],
    ) -> bool:
        """Record that a run of ``write_id`` starts as this write (the caller checked :meth:`record`);
        a rerun moves the row's time, which the retention counts from. False if a run had begun before."""
        row = conn.execute(
            sql.SQL(
                "INSERT INTO {t} (target, write_id, part, parts, rows, attempt, mode, detail) "
                "VALUES (%s, %s, %s, 0, 0, 0, %s, %s) ON CONFLICT (target, write_id, part) "
                "DO UPDATE SET committed_at = now() RETURNING xmax = 0"
            ).format(t=self.table.sql()),
            (target.quoted(), write_id, BEGUN, mode, _json(detail)),
        ).fetchone()
        return bool(row and row[0])

    def done(self, conn: psycopg.Connection[Any], target: TableName, write_id: str) -> int | None:
        """The rows of a finished write with this id, or None if it has not finished."""
        row = conn.execute(
            sql.SQL("SELECT rows FROM {} WHERE target = %s AND write_id = %s AND part = %s").format(
                self.table.sql()
            ),
            (target.quoted(), write_id, DONE),
        ).fetchone()
        return None if row is None else int(row[0])

    def committed(self, conn: psycopg.Connection[Any], target: TableName, write_id: str) -> tuple[int, int]:
        """(partitions committed, rows in them) of an unfinished write."""
        row = conn.execute(
            sql.SQL(
                "SELECT count(*), coalesce(sum(rows), 0) FROM {} "
                "WHERE target = %s AND write_id = %s AND part >= 0"
            ).format(self.table.sql()),
            (target.quoted(), write_id),
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def staged(self, conn: psycopg.Connection[Any], target: TableName, write_id: str) -> tuple[int, int, int]:
        """(partitions committed, the partition count they report, rows in them)."""
        row = conn.execute(
            sql.SQL(
                "SELECT count(*), coalesce(max(parts), 0), coalesce(sum(rows), 0) FROM {} "
                "WHERE target = %s AND write_id = %s AND part >= 0"
            ).format(self.table.sql()),
            (target.quoted(), write_id),
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])

    def finish(
        self,
        conn: psycopg.Connection[Any],
        target: TableName,
        write_id: str,
        rows: int,
        mode: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> bool:
        """Record the write as done (inside the caller's transaction); False if another run already did."""
        parts, _ = self.committed(conn, target, write_id)
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (target, write_id, part, parts, rows, attempt, mode, detail) "
                        "VALUES (%s, %s, %s, %s, %s, 0, %s, %s)"
                    ).format(self.table.sql()),
                    (target.quoted(), write_id, DONE, parts, rows, mode, _json(detail) if detail else None),
                )
                # DONE carries the identity now; the BEGUN row has served its purpose.
                conn.execute(
                    sql.SQL("DELETE FROM {} WHERE target = %s AND write_id = %s AND part = %s").format(
                        self.table.sql()
                    ),
                    (target.quoted(), write_id, BEGUN),
                )
        except psycopg.errors.UniqueViolation:
            return False
        return True

    def prune(self, conn: psycopg.Connection[Any], *, force: bool = False) -> dict[str, int] | None:
        """Expire what reruns no longer need (module docstring); None when another writer pruned less
        than ``PRUNE_EVERY`` ago (``force`` prunes anyway).

        Runs in a transaction of its own on ``conn``. Returns the counts of what went.
        """
        with conn.transaction():
            claimed = conn.execute(
                sql.SQL(
                    "INSERT INTO {t} (target, write_id, part, parts, rows, attempt) "
                    "VALUES ('', '', %s, 0, 0, 0) "
                    "ON CONFLICT (target, write_id, part) DO UPDATE SET committed_at = now() "
                    "WHERE {t}.committed_at < now() - %s RETURNING 1"
                ).format(t=self.table.sql()),
                (PRUNED, timedelta(0) if force else PRUNE_EVERY),
            ).fetchone()
            if claimed is None:
                return None
            markers = conn.execute(
                sql.SQL(
                    "DELETE FROM {t} m USING {t} d WHERE d.part = %s AND d.committed_at < now() - %s "
                    "AND m.target = d.target AND m.write_id = d.write_id AND m.part >= 0"
                ).format(t=self.table.sql()),
                (DONE, MARKER_GRACE),
            ).rowcount
            finished = conn.execute(
                sql.SQL("DELETE FROM {} WHERE part = %s AND committed_at < now() - %s").format(
                    self.table.sql()
                ),
                (DONE, RETENTION),
            ).rowcount
            # Unfinished writes: forgotten after the retention, counted from their latest change.
            abandoned = conn.execute(
                sql.SQL(
                    "DELETE FROM {t} b WHERE b.part = %s AND NOT EXISTS (SELECT 1 FROM {t} m "
                    "WHERE m.target = b.target AND m.write_id = b.write_id AND m.part <> %s "
                    "AND m.committed_at >= now() - %s) AND b.committed_at < now() - %s "
                    "RETURNING b.target, b.write_id"
                ).format(t=self.table.sql()),
                (BEGUN, BEGUN, RETENTION, RETENTION),
            ).fetchall()
            # Markers of writes forgotten above, or of writes logged before BEGUN rows existed; never those of
            # an unfinished write still remembered (a rerun of it must skip them).
            stale = conn.execute(
                sql.SQL(
                    "DELETE FROM {t} m WHERE m.part >= 0 AND m.committed_at < now() - %s AND NOT EXISTS "
                    "(SELECT 1 FROM {t} b WHERE b.target = m.target AND b.write_id = m.write_id "
                    "AND b.part = %s)"
                ).format(t=self.table.sql()),
                (RETENTION, BEGUN),
            ).rowcount
            dropped = 0
            for target_text, write_id in abandoned:
                target = TableName.parse(target_text)
                stage = stage_name(target, write_id)
                conn.execute(
                    sql.SQL("DROP TABLE IF EXISTS {}, {}").format(stage.sql(), stage_commits(stage).sql())
                )
                dropped += 1
        counts = {
            "markers": markers,
            "finished": finished,
            "abandoned": len(abandoned),
            "stale_markers": stale,
            "stages_dropped": dropped,
        }
        if any(counts.values()):
            log.info("pruned commit log %s: %s", self.table, counts)
        return counts


def _json(detail: dict[str, Any]) -> str:
    return json.dumps(detail, sort_keys=True, separators=(",", ":"))


def stage_name(target: TableName, write_id: str) -> TableName:
    """The staging table of one write: stable across reruns of the write id, so a rerun resumes it."""
    digest = hashlib.sha256(f"{target.quoted()}\x00{write_id}".encode()).hexdigest()[:20]
    return target.sibling(f"lakebase_spark_stage_{digest}")


def stage_commits(stage: TableName) -> TableName:
    """The staging table's own commit log (unlogged like it, so a crash empties both together)."""
    return stage.sibling(stage.name + "_commits")
