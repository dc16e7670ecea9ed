"""The Spark job of a write: the COPY data source run once, and what is still running when it fails.

Spark fails a job at the first task that runs out of attempts and does not wait for the job's other
running tasks: they are only asked to stop, and one that is already committing commits. So after a
failed job the commit log may still grow. :meth:`CopyJob.run` tags its job, and on failure waits
(on a classic session, through Spark's status tracker) until none of the job's tasks is running, so
what the caller then reads from the commit log is final.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from psycopg import sql

from ..names import TableName, quote_identifier
from ..spark.options import LakebaseOptions
from .commits import CommitLog
from .tables import Column, column_types_option

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["COPY_SOURCE", "CopyJob", "JobFailure", "copy_options"]

log = logging.getLogger(__name__)

#: The Spark data source that runs the COPY on the executors (jvm/.../CopyWriteSource.java).
COPY_SOURCE = "io.lakebase.spark.CopyWriteSource"
# Its option keys (WriteOptions.java); tests/test_contract.py checks the two sides agree.
WRITE_TABLE = "lakebase.write.table"
WRITE_COLUMNS = "lakebase.write.columns"
WRITE_COLUMN_TYPES = "lakebase.write.column.types"
WRITE_ID = "lakebase.write.id"
WRITE_COMMITS = "lakebase.write.commits"
#: Test-only fault injection (README, "Fault injection"): a point, on the first attempt of some partitions.
WRITE_FAULT = "lakebase.write.fault"
WRITE_FAULT_PARTITIONS = "lakebase.write.fault.partitions"
WRITE_FAULT_POINTS = ("fail-after-commit", "halt-after-commit", "fail-before-commit", "halt-mid-copy")

#: How long a failed write waits for its job's tasks that are still running (committing) to end.
STRAGGLER_WAIT = 120.0


@dataclass(frozen=True)
class JobFailure:
    """Why the job failed, and whether every task of it has ended (so the commit log is final)."""

    error: BaseException
    settled: bool


@dataclass(frozen=True)
class CopyJob:
    """One Spark job of the COPY data source: the rows, where they go, and under which write id."""

    df: DataFrame
    pairs: list[tuple[str, Column]]
    spark_options: LakebaseOptions  # holds the broker secret: its repr masks it
    extra: dict[str, str]
    write_id: str
    #: Seconds to wait for still-running tasks after a failure (tests shorten it).
    straggler_wait: float = field(default=STRAGGLER_WAIT)

    def run(self, into: TableName, commits: CommitLog) -> JobFailure | None:
        """Run the job; None when it succeeded, else the failure once its tasks have ended (or the wait
        gave up: ``settled`` is False)."""
        writer = (
            self.df.write.format(COPY_SOURCE)
            .options(**self.spark_options)
            .options(**self.extra)
            .options(**copy_options(into, self.pairs, self.write_id, commits))
            .mode("append")
        )
        tag = f"lakebase-spark-write-{uuid.uuid4().hex}"
        with _JobTag(self.df, tag) as tracker:
            try:
                writer.save()
            except Exception as e:
                settled = tracker.wait_until_idle(self.straggler_wait) if tracker else False
                return JobFailure(e, settled)
        return None

    @property
    def column_list(self) -> sql.Composable:
        return sql.SQL(", ").join(sql.Identifier(column.name) for _, column in self.pairs)


def copy_options(
    into: TableName, pairs: list[tuple[str, Column]], write_id: str, commits: CommitLog
) -> dict[str, str]:
    """The COPY writer's options for one write: where its rows go, as what, under which id."""
    return {
        WRITE_TABLE: into.quoted(),
        WRITE_COLUMNS: ",".join(quote_identifier(column.name) for _, column in pairs),
        WRITE_COLUMN_TYPES: column_types_option([c for _, c in pairs]),
        WRITE_ID: write_id,
        WRITE_COMMITS: commits.table.quoted(),
    }


class _JobTag:
    """Tags the jobs this thread starts (classic sessions), so their tasks can be watched afterwards."""

    def __init__(self, df: DataFrame, tag: str) -> None:
        self.tag = tag
        self._sc: Any = None
        try:
            sc = df.sparkSession.sparkContext  # Spark Connect sessions have none: no tracker then
            if hasattr(sc, "addJobTag"):
                self._sc = sc
        except Exception:
            self._sc = None

    def __enter__(self) -> _Tracker | None:
        if self._sc is None:
            return None
        self._sc.addJobTag(self.tag)
        return _Tracker(self._sc, self.tag)

    def __exit__(self, *exc: object) -> None:
        if self._sc is not None:
            self._sc.removeJobTag(self.tag)


class _Tracker:
    def __init__(self, sc: Any, tag: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._status = sc._jsc.sc().statusTracker()
        self._tag = tag
        self._clock = clock

    def wait_until_idle(self, timeout: float) -> bool:
        """True once every job with the tag has ended and none of its stages runs a task."""
        deadline = self._clock() + timeout
        while self._clock() < deadline:
            try:
                if self._idle():
                    return True
            except Exception as e:  # the status store is a best effort: say so rather than guess
                log.debug("cannot read Spark's job status (%s)", e)
                return False
            time.sleep(0.1)
        log.warning("tasks of the failed write were still running after %.0f s", timeout)
        return False

    def _idle(self) -> bool:
        jobs = list(self._status.getJobIdsForTag(self._tag))
        if not jobs:
            return False  # the listener has not seen the job start yet
        for job in jobs:
            info = self._status.getJobInfo(job)
            # The status store learns of a job's end after every earlier event of it (one queue, in order),
            # so once the job reads as ended, the tasks it started are all counted.
            if info.isEmpty() or str(info.get().status()) == "RUNNING":
                return False
            for stage in info.get().stageIds():
                stage_info = self._status.getStageInfo(stage)
                if not stage_info.isEmpty() and stage_info.get().numActiveTasks() > 0:
                    return False
        return True
