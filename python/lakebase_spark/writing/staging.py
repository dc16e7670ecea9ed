"""The staging table of a staged write (overwrite, upsert, atomic append), and the checks that keep it
and its commit log one thing.

The stage is an ``UNLOGGED`` copy of the target's columns with its own unlogged commit log, both named
after the target and the write id, so a rerun resumes them. Two things must never be trusted apart:

- **created together, or not at all**: if only one of the pair exists (someone dropped the other), the
  survivor is dropped and staging starts over. The target is untouched until the final apply, so
  starting over loses nothing; resuming from half a pair would lose rows (markers without their rows)
  or double them (rows without their markers).
- **checked before applying**: the stage must hold exactly the rows its log says were staged, from
  every partition of the job; otherwise nothing is applied and the pair is dropped for a clean rerun.

A crash of the database empties both unlogged tables together, which the same checks handle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from ..errors import WriteError
from ..names import TableName
from .commits import CommitLog, stage_commits, stage_name

if TYPE_CHECKING:
    import psycopg

__all__ = ["Stage", "StageMismatch"]

log = logging.getLogger(__name__)


class StageMismatch(WriteError):
    """The staging table does not hold what its commit log says was staged; nothing was applied."""


@dataclass(frozen=True)
class Stage:
    """The unlogged staging table of one write, and its own commit log."""

    table: TableName
    commits: CommitLog

    @classmethod
    def of(cls, target: TableName, write_id: str) -> Stage:
        table = stage_name(target, write_id)
        return cls(table, CommitLog(stage_commits(table), unlogged=True))

    def create(self, conn: psycopg.Connection[Any], target: TableName, columns: sql.Composable) -> bool:
        """Create the pair, or keep it to resume; True when a rerun resumes an existing stage.

        ``columns`` are the target's columns the write fills: the stage gets their exact types
        (numeric precision included), so a value the target cannot take fails in the stage.
        """
        with conn.transaction():
            # One creator at a time per stage (a rerun racing the first run): DDL checks then creates.
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (self.table.quoted(),))
            has_stage, has_log = (self._exists(conn, t) for t in (self.table, self.commits.table))
            if has_stage and has_log:
                return True
            if has_stage or has_log:
                log.warning(
                    "staging table %s exists without %s (or the other way round): one was dropped by hand; "
                    "dropping the other and staging again (the target is untouched)",
                    self.table,
                    self.commits.table,
                )
                self.drop(conn)
            conn.execute(
                sql.SQL("CREATE UNLOGGED TABLE {} AS SELECT {} FROM {} WITH NO DATA").format(
                    self.table.sql(), columns, target.sql()
                )
            )
            self.commits.create(conn)
        return False

    def verify(self, conn: psycopg.Connection[Any], write_id: str, rows_in_stage: int | None = None) -> int:
        """Check (inside the apply's transaction) that the stage holds what its log says; returns the rows.

        ``rows_in_stage`` is the stage's row count if the caller already counted it. Raises
        :class:`StageMismatch`.
        """
        if rows_in_stage is None:
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(self.table.sql())).fetchone()
            rows_in_stage = int(row[0]) if row else 0
        committed, parts, rows = self.commits.staged(conn, self.table, write_id)
        # parts < 0: written by the jar-free path, whose tasks cannot know the count (its commit checks it).
        if rows_in_stage != rows or (committed and parts >= 0 and committed != parts):
            raise StageMismatch(
                f"staging table {self.table} holds {rows_in_stage} rows, but its commit log "
                f"{self.commits.table} says {rows} rows were staged by {committed} of {parts} partitions: "
                "the staging tables were changed outside this writer (dropped, truncated or edited, or lost "
                "in a database crash). Nothing was applied; both were dropped, so a rerun with the same "
                "write_id stages every row again"
            )
        return rows

    def drop(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(
            sql.SQL("DROP TABLE IF EXISTS {}, {}").format(self.table.sql(), self.commits.table.sql())
        )

    @staticmethod
    def _exists(conn: psycopg.Connection[Any], table: TableName) -> bool:
        row = conn.execute("SELECT to_regclass(%s)", (table.quoted(),)).fetchone()
        return row is not None and row[0] is not None
