"""The commit log that makes writes exactly once: one table per schema, ``lakebase_spark_commits``.

Each partition of a write inserts its marker ``(target, write_id, part)`` in the same transaction as
its rows (see CopyDataWriter.java); the primary key makes a second commit of the same partition fail,
so it rolls back. When the whole write is done, the driver adds one row ``part = -1`` (in the same
transaction as the final apply for staged writes), which turns any rerun with the same write id into
a no-op, like Delta's ``txnAppId``/``txnVersion``. The partition markers stay: a run of the same
write id still in flight (speculation, a second driver) must keep colliding with them.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import psycopg
from psycopg import sql

from .tables import TableName

__all__ = ["COMMITS_TABLE", "DONE", "CommitLog"]

COMMITS_TABLE = "lakebase_spark_commits"
#: The ``part`` of the row that says a whole write is done.
DONE = -1

_DDL = """
CREATE {unlogged}TABLE IF NOT EXISTS {table} (
    target       text        NOT NULL,
    write_id     text        NOT NULL,
    part         integer     NOT NULL,
    parts        integer     NOT NULL,
    rows         bigint      NOT NULL,
    attempt      integer     NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target, write_id, part)
)
"""


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

    def finish(self, conn: psycopg.Connection[Any], target: TableName, write_id: str, rows: int) -> bool:
        """Record the write as done (inside the caller's transaction); False if another run already did."""
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (target, write_id, part, parts, rows, attempt) "
                        "VALUES (%s, %s, %s, 0, %s, 0)"
                    ).format(self.table.sql()),
                    (target.quoted(), write_id, DONE, rows),
                )
        except psycopg.errors.UniqueViolation:
            return False
        return True


def stage_name(target: TableName, write_id: str) -> TableName:
    """The staging table of one write: stable across reruns of the write id, so a rerun resumes it."""
    digest = hashlib.sha256(f"{target.quoted()}\x00{write_id}".encode()).hexdigest()[:20]
    return target.sibling(f"lakebase_spark_stage_{digest}")
